"""The session policy tested as attacks: a stolen refresh token kept alive by refreshing, refreshes
raced around a session's end, and an idle session's tokens. Ends are met a second either side
here; the stores' tests (tests/contract) meet them to the microsecond."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import jwt

from app.core.config import Settings
from tests.attacks.scene import assert_unauthorized
from tests.clock import OffsetClock
from tests.conftest import make_settings, serve
from tests.factories import Api, Tokens
from tests.routes import SESSIONS

DAY = timedelta(days=1)


@asynccontextmanager
async def _served(
    database_url: str, clock: OffsetClock, **limits: int
) -> AsyncIterator[tuple[Api, Settings]]:
    settings = make_settings(database_url, **limits)
    async with serve(settings, clock) as (_, api):
        yield api, settings


def _move_to(clock: OffsetClock, moment: datetime) -> None:
    clock.offset = moment - datetime.now(UTC)


def _expiry(token: str) -> datetime:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(claims["exp"], tz=UTC)


def _tokens(response: httpx.Response) -> Tokens:
    assert response.status_code == 200, response.text
    body = response.json()
    return Tokens(body["access_token"], body["refresh_token"])


def _cookie_max_age(response: httpx.Response, name: str) -> int:
    for line in response.headers.get_list("set-cookie"):
        if line.startswith(f"{name}="):
            return int(line.split("Max-Age=")[1].split(";")[0])
    raise AssertionError(f"no {name} cookie")


async def _session_times(api: Api, tokens: Tokens) -> dict[str, datetime]:
    """The calling session's times, as the sessions list shows them."""
    listed = (await api.client.get(SESSIONS, headers=tokens.headers)).json()
    (session,) = (session for session in listed if session["current"])
    return {
        name: datetime.fromisoformat(value)
        for name, value in session.items()
        if name.endswith("_at") and value is not None
    }


def _refusal(response: httpx.Response) -> str:
    """The code of a refusal that must look like every other."""
    assert_unauthorized(response)
    code: str = response.json()["code"]
    return code


async def test_a_stolen_refresh_token_kept_alive_by_refreshing_dies_at_the_absolute_end(
    database_url: str, clock: OffsetClock
) -> None:
    async with _served(database_url, clock) as (api, settings):
        victim = await api.new_user()
        absolute_end = (await _session_times(api, victim.tokens))["absolute_expires_at"]
        signed_in = absolute_end - DAY * settings.SESSION_ABSOLUTE_LIFETIME_DAYS
        # The thief refreshes every six days, inside the refresh token's seven.
        stolen = victim.tokens
        for day in (6, 12, 18, 24):
            _move_to(clock, signed_in + DAY * day)
            response = await api.refresh(stolen.refresh_token)
            stolen = _tokens(response)
            assert _expiry(stolen.refresh_token) <= absolute_end
            left = (absolute_end - clock.now()).total_seconds()
            assert _cookie_max_age(response, "refresh_token") <= left
        # The owner's other session, signed in so that its refresh token runs out with the
        # stolen session's absolute end, and left unused.
        _move_to(clock, absolute_end - DAY * settings.REFRESH_TOKEN_EXPIRE_DAYS)
        lapsing = await api.tokens(victim.email, victim.password)
        lapsing_end = (await _session_times(api, lapsing))["expires_at"]
        # A minute before the end: one more pair, neither token nor cookie outliving it.
        _move_to(clock, absolute_end - timedelta(minutes=1))
        response = await api.refresh(stolen.refresh_token)
        stolen = _tokens(response)
        assert _expiry(stolen.refresh_token) <= absolute_end
        assert _expiry(stolen.access_token) <= absolute_end
        assert response.json()["expires_in"] <= 60
        for cookie in ("access_token", "refresh_token", "csrf_token"):
            assert _cookie_max_age(response, cookie) <= 60
        assert (await api.me(stolen)).status_code == 200
        # Past both ends, the stolen session is refused as the lapsed one is: first while the
        # tokens' own expiry is within the clock-skew leeway, then after it.
        _move_to(clock, max(absolute_end, lapsing_end) + timedelta(seconds=2))
        for expected in ("session_revoked", "invalid_token"):
            assert _refusal(await api.me(stolen)) == expected
            for tokens in (stolen, lapsing):
                assert _refusal(await api.refresh(tokens.refresh_token)) == expected
            clock.advance(settings.JWT_LEEWAY_SECONDS)
        # Signing in again is how the owner gets a new session.
        assert (await api.login(victim.email, victim.password)).status_code == 200


async def test_refreshes_raced_around_the_absolute_end_get_nothing_past_it(
    database_url: str, clock: OffsetClock
) -> None:
    async with _served(database_url, clock) as (api, settings):
        victim = await api.new_user()
        absolute_end = (await _session_times(api, victim.tokens))["absolute_expires_at"]
        signed_in = absolute_end - DAY * settings.SESSION_ABSOLUTE_LIFETIME_DAYS
        stolen = victim.tokens
        for day in (6, 12, 18, 24):
            _move_to(clock, signed_in + DAY * day)
            stolen = _tokens(await api.refresh(stolen.refresh_token))
        _move_to(clock, absolute_end - timedelta(seconds=3))
        pairs: list[Tokens] = []

        async def refresh() -> None:
            pairs.append(_tokens(await api.refresh(stolen.refresh_token)))

        # The owner and the thief at once: one rotation, the others within the reuse grace.
        async with anyio.create_task_group() as group:
            for _ in range(6):
                group.start_soon(refresh)
        assert len({pair.refresh_token for pair in pairs}) == 1
        assert _expiry(pairs[0].refresh_token) <= absolute_end
        assert all(_expiry(pair.access_token) <= absolute_end for pair in pairs)
        _move_to(clock, absolute_end + timedelta(seconds=1))
        for token in (pairs[0].refresh_token, stolen.refresh_token):
            assert_unauthorized(await api.refresh(token))
        assert_unauthorized(await api.me(pairs[0]))


async def test_an_idle_sessions_tokens_fail_after_the_timeout(
    database_url: str, clock: OffsetClock
) -> None:
    # The shortest idle timeout there may be: an access token's lifetime.
    async with _served(
        database_url, clock, SESSION_IDLE_TIMEOUT_MINUTES=30, ACCESS_TOKEN_EXPIRE_MINUTES=30
    ) as (api, _):
        victim = await api.new_user()
        # Used in time, again and again: each refresh moves the idle end on.
        tokens = victim.tokens
        for _ in range(3):
            clock.advance(29 * 60)
            tokens = _tokens(await api.refresh(tokens.refresh_token))
        idle_end = (await _session_times(api, tokens))["idle_expires_at"]
        # Then left alone: a second before the idle end the session works; a second after,
        # the access token is refused by the session check (its own expiry is still within
        # the clock-skew leeway) and the refresh token by the store.
        _move_to(clock, idle_end - timedelta(seconds=1))
        assert (await api.me(tokens)).status_code == 200
        _move_to(clock, idle_end + timedelta(seconds=1))
        assert _refusal(await api.me(tokens)) == "session_revoked"
        assert _refusal(await api.refresh(tokens.refresh_token)) == "session_revoked"


async def test_a_stolen_refresh_token_of_an_idle_session_is_refused(
    database_url: str, clock: OffsetClock
) -> None:
    async with _served(database_url, clock, SESSION_IDLE_TIMEOUT_MINUTES=60) as (api, settings):
        victim = await api.new_user()
        clock.advance(60 * 60 + settings.JWT_LEEWAY_SECONDS + 1)
        assert_unauthorized(await api.refresh(victim.tokens.refresh_token))
