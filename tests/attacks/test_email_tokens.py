"""The mailed one-time tokens, tested as attacks through the API and a real SMTP server: reused,
expired, misdirected, spliced, guessed and raced tokens; the answers and the mail budgets of
the routes that name an address; and registration when addresses must be verified."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import Message
from typing import Any

import anyio
import httpx
import pytest

from tests.attacks.guesses import assert_429
from tests.clock import OffsetClock
from tests.conftest import serve
from tests.factories import DEFAULT_PASSWORD, Api, UserHandle
from tests.mail_server import MailServer, text_of, token_in
from tests.mailing import Outbox, mailed_settings
from tests.routes import (
    FORGOT_PASSWORD,
    REQUEST_VERIFY_TOKEN,
    RESET_PASSWORD,
    VERIFY,
)

NEW_PASSWORD = "a brand new passphrase for this test"
VERIFY_SUBJECT = "Confirm your email address"
RESET_SUBJECT = "Reset your"
# The client address the test transport reports is a trusted proxy's with these settings.
PROXY = {"TRUSTED_PROXIES": ["203.0.113.0/24"]}


@asynccontextmanager
async def mailing(
    database_url: str, smtp: MailServer, clock: OffsetClock, **overrides: Any
) -> AsyncIterator[Api]:
    async with serve(mailed_settings(database_url, smtp.port, **overrides), clock) as (_, api):
        yield api


@pytest.fixture
async def api(database_url: str, smtp: MailServer, clock: OffsetClock) -> AsyncIterator[Api]:
    async with mailing(database_url, smtp, clock) as served:
        yield served


def _subject(mail: Message) -> str:
    """The subject as a reader sees it (a long one comes folded)."""
    return " ".join(str(mail["Subject"]).split())


async def _mails(smtp: MailServer, address: str, subject: str, count: int = 1) -> list[Message]:
    """The mails to `address` whose subject starts with `subject`, once there are `count`."""
    mails = await smtp.inbox.arrived(address, count)
    with anyio.fail_after(10):
        while len(found := [m for m in mails if _subject(m).startswith(subject)]) < count:
            mails = await smtp.inbox.arrived(address, len(mails) + 1)
    return found


async def _verify_token(smtp: MailServer, user: UserHandle) -> str:
    [mail] = await _mails(smtp, user.email, VERIFY_SUBJECT)
    return token_in(mail)


async def _reset_token(api: Api, smtp: MailServer, user: UserHandle, nth: int = 1) -> str:
    """Ask for a reset link (the `nth` asked for), and the token its mail carries."""
    asked = await api.client.post(FORGOT_PASSWORD, json={"email": user.email})
    assert asked.status_code == 202, asked.text
    return token_in((await _mails(smtp, user.email, RESET_SUBJECT, nth))[nth - 1])


async def _reset(api: Api, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return await api.client.post(RESET_PASSWORD, json={"token": token, "password": password})


async def _verify(api: Api, token: str) -> httpx.Response:
    return await api.client.post(VERIFY, json={"token": token})


def _refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code


async def _password_is(api: Api, user: UserHandle, password: str) -> bool:
    return (await api.login(user.email, password)).status_code == 200


async def _is_verified(api: Api, user: UserHandle) -> bool:
    verified: bool = (await api.me(user.tokens)).json()["is_verified"]
    return verified


async def test_a_used_reset_token_is_refused(api: Api, smtp: MailServer) -> None:
    user = await api.new_user()
    token = await _reset_token(api, smtp, user)
    assert (await _reset(api, token)).status_code == 200
    _refused(await _reset(api, token, "yet another passphrase to set"), "email_token_used")
    assert await _password_is(api, user, NEW_PASSWORD)


async def test_an_expired_token_is_refused(
    api: Api, smtp: MailServer, clock: OffsetClock, database_url: str
) -> None:
    user = await api.new_user()
    token = await _reset_token(api, smtp, user)
    minutes = mailed_settings(database_url, smtp.port).RESET_TOKEN_MINUTES
    clock.advance(minutes * 60 + 1)
    _refused(await _reset(api, token), "email_token_expired")
    assert await _password_is(api, user, DEFAULT_PASSWORD)


async def test_a_token_is_good_only_for_its_purpose(api: Api, smtp: MailServer) -> None:
    user = await api.new_user()
    verify_token = await _verify_token(smtp, user)
    reset_token = await _reset_token(api, smtp, user)
    _refused(await _reset(api, verify_token), "email_token_wrong_purpose")
    _refused(await _verify(api, reset_token), "email_token_wrong_purpose")
    assert await _password_is(api, user, DEFAULT_PASSWORD)
    assert not await _is_verified(api, user)
    # Neither was spent by the misuse.
    assert (await _verify(api, verify_token)).status_code == 200
    assert (await _reset(api, reset_token)).status_code == 200


async def test_a_token_acts_only_on_the_account_it_was_sent_to(api: Api, smtp: MailServer) -> None:
    victim = await api.new_user()
    attacker = await api.new_user()
    victims = await _reset_token(api, smtp, victim)
    attackers = await _reset_token(api, smtp, attacker)
    # The victim's token id with the attacker's own secret, and the other way round.
    victim_id, attacker_secret = victims.partition(".")[0], attackers.partition(".")[2]
    _refused(await _reset(api, f"{victim_id}.{attacker_secret}"), "email_token_invalid")
    _refused(
        await _reset(api, f"{attackers.partition('.')[0]}.{victims.partition('.')[2]}"),
        "email_token_invalid",
    )
    # Signed in as the attacker, the attacker's token still changes only the attacker's.
    done = await api.client.post(
        RESET_PASSWORD,
        json={"token": attackers, "password": NEW_PASSWORD},
        headers=attacker.headers,
    )
    assert done.status_code == 200, done.text
    assert await _password_is(api, victim, DEFAULT_PASSWORD)
    assert (await api.me(victim.tokens)).status_code == 200
    assert await _password_is(api, attacker, NEW_PASSWORD)
    # And the victim's own link works.
    assert (await _reset(api, victims, "the victim's own new passphrase")).status_code == 200


async def test_wrong_guesses_void_the_token(
    database_url: str, smtp: MailServer, clock: OffsetClock
) -> None:
    async with mailing(database_url, smtp, clock, EMAIL_TOKEN_MAX_ATTEMPTS=3) as api:
        guessed, spared = await api.new_user(), await api.new_user()
        for user, wrong in ((guessed, 3), (spared, 2)):
            token = await _verify_token(smtp, user)
            token_id = token.partition(".")[0]
            for n in range(wrong):
                _refused(await _verify(api, f"{token_id}.wrong-secret-{n}"), "email_token_invalid")
            if user is guessed:
                # The right secret, after too many wrong ones, is as good as a wrong one.
                _refused(await _verify(api, token), "email_token_invalid")
                assert not await _is_verified(api, user)
            else:
                assert (await _verify(api, token)).status_code == 200
                assert await _is_verified(api, user)


async def test_one_reset_token_used_in_parallel_works_once(api: Api, smtp: MailServer) -> None:
    user = await api.new_user()
    token = await _reset_token(api, smtp, user)
    passwords = [f"parallel passphrase number {n}" for n in range(10)]
    answers = await asyncio.gather(*(_reset(api, token, password) for password in passwords))
    won = [password for password, a in zip(passwords, answers, strict=True) if a.is_success]
    assert len(won) == 1, [a.text for a in answers]
    lost = [a for a in answers if not a.is_success]
    assert {a.status_code for a in lost} == {400}
    assert {a.json()["code"] for a in lost} <= {"email_token_used", "email_token_invalid"}
    assert await _password_is(api, user, won[0])
    for password in passwords:
        if password != won[0]:
            assert not await _password_is(api, user, password)


async def test_a_new_reset_token_voids_the_earlier_one(api: Api, smtp: MailServer) -> None:
    user = await api.new_user()
    first = await _reset_token(api, smtp, user, 1)
    second = await _reset_token(api, smtp, user, 2)
    _refused(await _reset(api, first), "email_token_used")
    assert await _password_is(api, user, DEFAULT_PASSWORD)
    assert (await _reset(api, second)).status_code == 200


async def test_unknown_addresses_get_the_same_answer_and_no_mail(
    api: Api, smtp: MailServer, database_url: str
) -> None:
    user = await api.new_user()
    await _verify_token(smtp, user)
    unknown = "nobody-here@example.com"
    answers: dict[str, list[tuple[int, object]]] = {}
    for address in (user.email, unknown):
        for path in (FORGOT_PASSWORD, REQUEST_VERIFY_TOKEN):
            answer = await api.client.post(path, json={"email": address})
            answers.setdefault(address, []).append((answer.status_code, answer.json()))
    assert answers[user.email] == answers[unknown]
    assert answers[unknown][0][0] == 202
    await _mails(smtp, user.email, RESET_SUBJECT)
    await _mails(smtp, user.email, VERIFY_SUBJECT, 2)
    outbox = Outbox(mailed_settings(database_url, smtp.port))
    try:
        rows = await outbox.settled()
    finally:
        await outbox.close()
    assert sorted(row.outcome or "" for row in rows) == [
        "dropped",
        "dropped",
        "sent",
        "sent",
        "sent",
    ]
    assert smtp.inbox.to(unknown) == []
    assert unknown not in smtp.inbox.offered


async def test_an_address_has_its_own_mail_budget(
    database_url: str, smtp: MailServer, clock: OffsetClock
) -> None:
    overrides = PROXY | {"RATE_LIMIT_MAIL": "3/minute", "RATE_LIMIT_STRATEGY": "moving-window"}
    async with mailing(database_url, smtp, clock, **overrides) as api:
        user = await api.new_user()
        other = await api.new_user()

        async def forgot(email: str, ip: str) -> httpx.Response:
            return await api.client.post(
                FORGOT_PASSWORD, json={"email": email}, headers={"X-Forwarded-For": ip}
            )

        # The registration's verification mail was the first of the address's three.
        for n in range(2):
            asked = await forgot(user.email, f"198.51.100.{n + 1}")
            assert asked.status_code == 202, asked.text
        # From yet other clients, the address's budget is spent; another address's is not.
        assert_429(await forgot(user.email, "198.51.100.50"))
        assert_429(await forgot(user.email.upper(), "198.51.100.51"))
        assert (await forgot(other.email, "198.51.100.50")).status_code == 202
        await _mails(smtp, other.email, RESET_SUBJECT)
        await _mails(smtp, user.email, RESET_SUBJECT, 2)
        await asyncio.sleep(0.5)
        assert len(await _mails(smtp, user.email, RESET_SUBJECT)) == 2


async def test_an_unverified_account_cannot_sign_in_until_verified(
    database_url: str, smtp: MailServer, clock: OffsetClock
) -> None:
    async with mailing(database_url, smtp, clock, REQUIRE_VERIFIED_EMAIL=True) as api:
        email = "unverified@example.com"
        registered = await api.register(email=email)
        assert registered.status_code == 202, registered.text
        refused = await api.login(email, DEFAULT_PASSWORD)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "email_not_verified"
        assert "access_token" not in refused.json()
        [mail] = await _mails(smtp, email, VERIFY_SUBJECT)
        assert (await _verify(api, token_in(mail))).status_code == 200
        assert (await api.login(email, DEFAULT_PASSWORD)).status_code == 200


async def test_registering_a_known_address_answers_as_a_new_one_and_tells_its_owner(
    database_url: str, smtp: MailServer, clock: OffsetClock
) -> None:
    async with mailing(database_url, smtp, clock, REQUIRE_VERIFIED_EMAIL=True) as api:
        first = await api.register(email="owner@example.com", username="owner")
        again = await api.register(email="owner@example.com", username="intruder")
        fresh = await api.register(email="fresh@example.com", username="fresh")
        answers = [(r.status_code, r.json()) for r in (first, again, fresh)]
        assert answers[0] == answers[1] == answers[2]
        assert answers[0][0] == 202
        [notice] = await _mails(smtp, "owner@example.com", "Someone tried to create")
        assert "/account/sign-in" in text_of(notice)
        await _mails(smtp, "fresh@example.com", VERIFY_SUBJECT)
        # The owner's account is untouched: one verification mail, the old password.
        await asyncio.sleep(0.3)
        assert len(smtp.inbox.to("owner@example.com")) == 2
        [verify] = await _mails(smtp, "owner@example.com", VERIFY_SUBJECT)
        assert (await _verify(api, token_in(verify))).status_code == 200
        assert (await api.login("owner@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_a_taken_username_tells_nothing_about_the_address(
    database_url: str, smtp: MailServer, clock: OffsetClock
) -> None:
    async with mailing(database_url, smtp, clock, REQUIRE_VERIFIED_EMAIL=True) as api:
        assert (await api.register(email="owner@example.com", username="owner")).status_code == 202
        known = await api.register(email="owner@example.com", username="OWNER")
        unknown = await api.register(email="stranger@example.com", username="owner")
        assert known.status_code == unknown.status_code == 409
        assert known.json() == unknown.json()
        assert known.json()["code"] == "username_taken"
        await asyncio.sleep(0.3)
        assert not [m for m in smtp.inbox.to("owner@example.com") if "Someone" in _subject(m)]
