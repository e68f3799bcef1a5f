"""Sign-ins raced against the end of their account or of its password: a sign-in that read the
account before the account was deleted, deactivated or given a new password, and stores its
session after, must end with no session left and the same 401 as a wrong password.

Each test runs with the sessions in the database and in Redis, on SQLite and on PostgreSQL:
Redis with SQLite is where a deleted account's id went to the next registrant. The changes
are made at a set point of a sign-in, between its password check and its session's creation,
by a hasher that runs the change right after it checks a password; then the same race is run
in parallel over HTTP.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from sqlalchemy.exc import IntegrityError

from app.core.config import Settings
from app.core.errors import UserNotFound
from app.core.passwords import PasswordHasher
from app.domain.sessions import SessionRecord
from app.main import create_app
from app.services.bootstrap import prepare_from_settings
from app.storage.factory import Storage, build_storage
from tests.clock import OffsetClock
from tests.conftest import REDIS_TEST_PREFIX, REDIS_TEST_URL, delete_redis_test_keys
from tests.factories import ADMIN_ID, Api, Tokens, UserHandle, session_record
from tests.routes import ME, USERS

NEW_PASSWORD = "a new password nobody had before"
RACING_SIGN_INS = 10
Action = Callable[[], Coroutine[Any, Any, object]]


class HookedHasher(PasswordHasher):
    """The real hasher, which runs a test's action once, right after its next password check."""

    after_next_check: Action | None = None

    async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        checked = await super().verify(password, stored_hash)
        action, self.after_next_check = self.after_next_check, None
        if action is not None:
            # A task of its own, as another request would be.
            await asyncio.create_task(action())
        return checked


@dataclass(frozen=True)
class Race:
    api: Api
    hasher: HookedHasher
    storage: Storage
    settings: Settings
    clock: OffsetClock

    async def live_sessions(self, user_id: int) -> list[SessionRecord]:
        return await self.storage.sessions.list_live(user_id, self.clock.now())

    async def assert_refused(self, response: httpx.Response) -> None:
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "invalid_credentials"
        assert "set-cookie" not in response.headers

    async def assert_ended(self, response: httpx.Response) -> None:
        """The sign-in's tokens, if it got any, no longer work, as seen past the liveness
        cache."""
        if response.status_code != 200:
            return
        self.clock.advance(self.settings.SESSION_CACHE_SECONDS)
        body = response.json()
        assert (await self.api.me(body["access_token"])).status_code == 401
        assert (await self.api.refresh(body["refresh_token"])).status_code == 401


@pytest.fixture(params=["sessions-in-sql", "sessions-in-redis"])
def race_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "sessions-in-sql":
        return settings.model_copy(update={"REDIS_URL": None})
    delete_redis_test_keys()
    return settings.model_copy(
        update={"REDIS_URL": REDIS_TEST_URL, "REDIS_KEY_PREFIX": REDIS_TEST_PREFIX}
    )


@asynccontextmanager
async def _served(settings: Settings, clock: OffsetClock) -> AsyncIterator[Race]:
    hasher = cast(HookedHasher, HookedHasher.from_settings(settings))
    app = create_app(settings, clock=clock, hasher=hasher)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="https://testserver") as client,
    ):
        # A second view of the same stores, for what the app would not show.
        storage = build_storage(settings)
        try:
            yield Race(Api(client), hasher, storage, settings, clock)
        finally:
            await storage.close()


@pytest.fixture
async def race(race_settings: Settings, clock: OffsetClock) -> AsyncIterator[Race]:
    async with _served(race_settings, clock) as served:
        yield served


async def _delete(api: Api, user: UserHandle) -> None:
    response = await api.client.request(
        "DELETE", ME, headers=user.headers, json={"password": user.password}
    )
    assert response.status_code == 204, response.text


async def _change_password(api: Api, user: UserHandle) -> httpx.Response:
    return await api.client.put(
        ME,
        headers=user.headers,
        json={"password": NEW_PASSWORD, "current_password": user.password},
    )


async def _assert_ids_never_given_again(race: Race, deleted_id: int) -> None:
    """The next registrant does not inherit the deleted account's id (SQLite reused the
    largest), so nothing left under that id can ever be theirs."""
    registered = await race.api.register()
    assert registered.status_code == 201, registered.text
    assert registered.json()["id"] > deleted_id


# The deterministic races: the change lands between the password check and the session.


async def test_a_sign_in_whose_account_is_deleted_meanwhile_gets_no_session(race: Race) -> None:
    user = await race.api.new_user()
    race.hasher.after_next_check = lambda: _delete(race.api, user)
    response = await race.api.login(user.email, user.password)
    await race.assert_refused(response)
    assert await race.live_sessions(user.id) == []
    await _assert_ids_never_given_again(race, user.id)


async def test_a_sign_in_whose_account_is_deactivated_meanwhile_gets_no_session(
    race: Race,
) -> None:
    admin = await race.api.admin()
    user = await race.api.new_user()

    async def deactivate() -> None:
        response = await race.api.client.put(
            f"{USERS}{user.id}", headers=admin.headers, json={"is_active": False}
        )
        assert response.status_code == 200, response.text

    race.hasher.after_next_check = deactivate
    response = await race.api.login(user.email, user.password)
    await race.assert_refused(response)
    assert await race.live_sessions(user.id) == []


async def test_a_sign_in_with_the_password_changed_meanwhile_gets_no_session(race: Race) -> None:
    user = await race.api.new_user()
    race.hasher.after_next_check = lambda: _change_password(race.api, user)
    response = await race.api.login(user.email, user.password)
    await race.assert_refused(response)
    # Only the session that changed the password is left.
    live = await race.live_sessions(user.id)
    assert [session.id for session in live] == [user.tokens.session_id]
    assert (await race.api.login(user.email, NEW_PASSWORD)).status_code == 200


async def test_a_sign_in_survives_a_rehash_of_the_same_password_meanwhile(race: Race) -> None:
    """Another sign-in upgrading the hash to new parameters changes it, not the password."""
    user = await race.api.new_user()
    found = await race.storage.users.credentials_of(user.id)
    assert found is not None

    async def rehash() -> None:
        rehashed = await race.hasher.hash(user.password)
        await race.storage.users.upgrade_password_hash(
            user.id, old=found.hashed_password, new=rehashed
        )

    race.hasher.after_next_check = rehash
    response = await race.api.login(user.email, user.password)
    assert response.status_code == 200, response.text
    again = await race.storage.users.credentials_of(user.id)
    assert again is not None
    assert again.hashed_password != found.hashed_password
    body = response.json()
    session_id = Tokens(body["access_token"], body["refresh_token"]).session_id
    assert session_id in {session.id for session in await race.live_sessions(user.id)}


async def test_the_database_session_store_refuses_a_session_of_a_deleted_account(
    settings: Settings, clock: OffsetClock
) -> None:
    """A domain error, not the database's IntegrityError (a 500)."""
    settings = settings.model_copy(update={"REDIS_URL": None})
    await prepare_from_settings(settings)
    storage = build_storage(settings)
    try:
        with pytest.raises(UserNotFound):
            await storage.sessions.create(session_record(clock.now(), user_id=ADMIN_ID + 1000))
        # Only the foreign key means the account is gone: a session id taken is another fault.
        session = session_record(clock.now())
        await storage.sessions.create(session)
        with pytest.raises(IntegrityError):
            await storage.sessions.create(session)
    finally:
        await storage.close()


# The same races, run in parallel over HTTP as an attacker would.


async def test_sign_ins_racing_a_deletion_leave_no_session_and_no_id_to_inherit(
    race: Race,
) -> None:
    await race.api.new_user()
    # The newest account: the one whose id SQLite gave again.
    user = await race.api.new_user()
    sign_ins = [race.api.login(user.email, user.password) for _ in range(RACING_SIGN_INS)]
    deletion = race.api.client.request(
        "DELETE", ME, headers=user.headers, json={"password": user.password}
    )
    *responses, deleted = await asyncio.gather(*sign_ins, deletion)
    assert deleted.status_code == 204, deleted.text
    for response in responses:
        assert response.status_code in (200, 401), response.text
        if response.status_code == 401:
            assert response.json()["code"] == "invalid_credentials"
    assert await race.live_sessions(user.id) == []
    for response in responses:
        await race.assert_ended(response)
    await _assert_ids_never_given_again(race, user.id)
    # ... and a token of the deleted account never works for the new one.
    for response in responses:
        if response.status_code == 200:
            assert (await race.api.refresh(response.json()["refresh_token"])).status_code == 401


async def test_sign_ins_with_the_old_password_racing_its_change_leave_no_session(
    race: Race,
) -> None:
    user = await race.api.new_user()
    sign_ins = [race.api.login(user.email, user.password) for _ in range(RACING_SIGN_INS)]
    *responses, changed = await asyncio.gather(*sign_ins, _change_password(race.api, user))
    assert changed.status_code == 200, changed.text
    for response in responses:
        assert response.status_code in (200, 401), response.text
    live = await race.live_sessions(user.id)
    assert [session.id for session in live] == [user.tokens.session_id]
    for response in responses:
        await race.assert_ended(response)
