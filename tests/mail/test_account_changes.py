"""Changes to an account that mail its owner, end to end through the API and a real SMTP
server: the confirmed email change and its undo, password notices, leaving, and the admin's
verification tools."""

from collections.abc import AsyncIterator, Callable
from email.message import Message
from typing import cast

import anyio
import pytest
from redis.asyncio import Redis
from sqlalchemy import Connection, Table, func, select

from app.api.deps import ServiceApp
from app.core.config import Settings
from app.domain.audit import AuditEntry
from app.models import AuthSession, EmailToken, MailOutbox, User
from app.storage.factory import build_storage
from tests.clock import OffsetClock
from tests.conftest import serve
from tests.factories import DEFAULT_PASSWORD, Api, UserHandle
from tests.mail_server import MailServer, text_of, token_in
from tests.mailing import Outbox
from tests.routes import (
    CONFIRM_EMAIL_CHANGE,
    ME,
    MY_DATA,
    UNDO_EMAIL_CHANGE,
    USER_VERIFICATION,
    USERS,
    VERIFY,
)

NEW_ADDRESS = "moved@example.com"


@pytest.fixture
def mailed(settings: Settings, smtp: MailServer) -> Settings:
    return settings.model_copy(
        update={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": smtp.port,
            "SMTP_SECURITY": "none",
            "PUBLIC_URL": "https://auth.example.com",
            "MAIL_RETRY_MAX_SECONDS": 0.2,
            "MAIL_POLL_SECONDS": 0.1,
        }
    )


@pytest.fixture
async def mailing(mailed: Settings, clock: OffsetClock) -> AsyncIterator[tuple[ServiceApp, Api]]:
    async with serve(mailed, clock) as served:
        yield served


@pytest.fixture
def api(mailing: tuple[ServiceApp, Api]) -> Api:
    return mailing[1]


async def _mails(smtp: MailServer, address: str, count: int = 1) -> list[Message]:
    return await anyio.to_thread.run_sync(lambda: smtp.inbox.wait_for(address, count))


async def _mail(smtp: MailServer, address: str, subject_word: str, count: int = 1) -> Message:
    """The latest mail to `address` whose subject has `subject_word`, once `count` such came."""
    for _ in range(200):
        found = [
            mail for mail in smtp.inbox.to(address) if subject_word in str(mail["Subject"]).lower()
        ]
        if len(found) >= count:
            return found[-1]
        await anyio.sleep(0.05)
    raise AssertionError(f"no mail about {subject_word!r} to {address}")


def _subjects(smtp: MailServer, address: str) -> list[str]:
    return [str(mail["Subject"]).lower() for mail in smtp.inbox.to(address)]


async def _ask_to_move(api: Api, user: UserHandle, email: str = NEW_ADDRESS) -> None:
    asked = await api.client.put(
        ME, json={"email": email, "current_password": DEFAULT_PASSWORD}, headers=user.headers
    )
    assert asked.status_code == 202, asked.text
    assert asked.json()["email"] == user.email


async def test_an_email_change_is_confirmed_from_the_new_address_and_undone_from_the_old(
    api: Api, smtp: MailServer
) -> None:
    user = await api.new_user()
    await _ask_to_move(api, user)
    confirmation = await _mail(smtp, NEW_ADDRESS, "confirm")
    assert "https://auth.example.com/account/confirm-email?token=" in text_of(confirmation)
    # Until confirmed, the account keeps its address.
    assert (await api.me(user.tokens)).json()["email"] == user.email
    confirmed = await api.client.post(CONFIRM_EMAIL_CHANGE, json={"token": token_in(confirmation)})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["email"] == NEW_ADDRESS
    assert confirmed.json()["is_verified"] is True
    assert (await api.login(NEW_ADDRESS, DEFAULT_PASSWORD)).status_code == 200
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 401
    # The old address is told, with a way back.
    notice = await _mail(smtp, user.email, "account changed")
    assert NEW_ADDRESS in text_of(notice)
    undone = await api.client.post(UNDO_EMAIL_CHANGE, json={"token": token_in(notice)})
    assert undone.status_code == 200, undone.text
    assert undone.json()["email"] == user.email
    # The change may have been a thief's: every session ends.
    assert (await api.me(user.tokens)).status_code == 401
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200
    again = await api.client.post(UNDO_EMAIL_CHANGE, json={"token": token_in(notice)})
    assert again.json()["code"] == "email_token_used"


async def test_a_confirmation_cannot_take_an_address_another_account_took_meanwhile(
    api: Api, smtp: MailServer
) -> None:
    user = await api.new_user()
    await _ask_to_move(api, user)
    confirmation = await _mail(smtp, NEW_ADDRESS, "confirm")
    await api.new_user(email=NEW_ADDRESS)
    confirmed = await api.client.post(CONFIRM_EMAIL_CHANGE, json={"token": token_in(confirmation)})
    assert confirmed.status_code == 409
    assert confirmed.json()["code"] == "email_taken"
    assert (await api.me(user.tokens)).json()["email"] == user.email


async def test_a_second_change_request_voids_the_first_link(api: Api, smtp: MailServer) -> None:
    user = await api.new_user()
    await _ask_to_move(api, user)
    first = await _mail(smtp, NEW_ADDRESS, "confirm")
    await _ask_to_move(api, user, "elsewhere@example.com")
    second = await _mail(smtp, "elsewhere@example.com", "confirm")
    stale = await api.client.post(CONFIRM_EMAIL_CHANGE, json={"token": token_in(first)})
    assert stale.status_code == 400
    assert stale.json()["code"] == "email_token_used"
    fresh = await api.client.post(CONFIRM_EMAIL_CHANGE, json={"token": token_in(second)})
    assert fresh.json()["email"] == "elsewhere@example.com"


async def test_a_new_password_is_told_to_the_owner(api: Api, smtp: MailServer) -> None:
    user = await api.new_user()
    changed = await api.client.put(
        ME,
        json={"password": "a different long passphrase", "current_password": DEFAULT_PASSWORD},
        headers=user.headers,
    )
    assert changed.status_code == 200, changed.text
    notice = await _mail(smtp, user.email, "password")
    assert "was changed" in text_of(notice)


async def test_leaving_needs_the_password_ends_everything_and_erases_the_account(
    api: Api, smtp: MailServer, mailed: Settings
) -> None:
    user = await api.new_user()
    await _mails(smtp, user.email)
    other_device = await api.tokens(user.email, DEFAULT_PASSWORD)
    wrong = await api.client.request(
        "DELETE", ME, json={"password": "not my password"}, headers=user.headers
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "current_password_invalid"
    assert (await api.me(user.tokens)).status_code == 200
    left = await api.client.request(
        "DELETE", ME, json={"password": DEFAULT_PASSWORD}, headers=user.headers
    )
    assert left.status_code == 204, left.text
    for tokens in (user.tokens, other_device):
        assert (await api.me(tokens)).status_code == 401
        assert (await api.refresh(tokens.refresh_token)).status_code == 401
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 401
    farewell = await _mail(smtp, user.email, "deleted")
    assert "last mail" in text_of(farewell)
    outbox, storage = Outbox(mailed), build_storage(mailed)
    try:
        await outbox.settled()
        assert await storage.database.read(_rows_naming(user.id, user.email)) == 0
        assert await _redis_keys_of(mailed, user.id) == []
        # The audit trail is kept, naming the account by its id alone (written within a
        # second).
        for _ in range(50):
            trail = await storage.audit.of_user(user.id, limit=100)
            if "account_deleted" in _events(trail):
                break
            await anyio.sleep(0.1)
        assert {"account_deleted", "registered", "login_succeeded"} <= _events(trail)
        assert user.email not in repr(trail)
    finally:
        await outbox.close()
        await storage.close()


def _events(trail: list[AuditEntry]) -> set[str]:
    return {entry.event for entry in trail}


def _rows_naming(user_id: int, email: str) -> Callable[[Connection], int]:
    """How many rows of the SQL database name the account, by id or by address."""
    users, tokens, mails, sessions = (
        cast(Table, model.__table__) for model in (User, EmailToken, MailOutbox, AuthSession)
    )
    wheres = [
        (users, users.c.email == email),
        (users, users.c.id == user_id),
        (sessions, sessions.c.user_id == user_id),
        (tokens, tokens.c.user_id == user_id),
        (mails, mails.c.address == email),
    ]

    def count(db: Connection) -> int:
        return sum(
            db.execute(select(func.count()).select_from(table).where(where)).scalar_one()
            for table, where in wheres
        )

    return count


async def _redis_keys_of(settings: Settings, user_id: int) -> list[str]:
    """The Redis keys that still belong to the account (none without Redis)."""
    if settings.REDIS_URL is None:
        return []
    redis = Redis.from_url(settings.REDIS_URL, decode_responses=True)
    try:
        pattern = f"{settings.REDIS_KEY_PREFIX}:{{{user_id}}}:*"
        return [key async for key in redis.scan_iter(match=pattern)]
    finally:
        await redis.aclose()


async def test_mail_queued_for_a_leaving_account_is_not_sent(api: Api, smtp: MailServer) -> None:
    smtp.stop()
    user = await api.new_user()
    left = await api.client.request(
        "DELETE", ME, json={"password": DEFAULT_PASSWORD}, headers=user.headers
    )
    assert left.status_code == 204
    smtp.start()
    await _mail(smtp, user.email, "deleted")
    # The verification link queued at registration was dropped with the account.
    await anyio.sleep(0.5)
    [subject] = _subjects(smtp, user.email)
    assert "deleted" in subject


async def test_the_last_admin_cannot_leave(api: Api) -> None:
    admin = await api.admin()
    refused = await api.client.request(
        "DELETE", ME, json={"password": admin.password}, headers=admin.headers
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "last_admin"
    assert (await api.me(admin.tokens)).status_code == 200


async def test_an_admin_marks_verified_or_sends_a_new_link(api: Api, smtp: MailServer) -> None:
    admin = await api.admin()
    user = await api.new_user()
    first = await _mail(smtp, user.email, "confirm")
    resend = USER_VERIFICATION.format(user_id=user.id)
    assert (await api.client.post(resend, headers=user.headers)).status_code == 403
    sent = await api.client.post(resend, headers=admin.headers)
    assert sent.status_code == 202, sent.text
    second = await _mail(smtp, user.email, "confirm", count=2)
    # The new link voids the old one.
    stale = await api.client.post(VERIFY, json={"token": token_in(first)})
    assert stale.json()["code"] == "email_token_used"
    assert (await api.client.post(VERIFY, json={"token": token_in(second)})).status_code == 200
    verified = await api.client.post(resend, headers=admin.headers)
    assert verified.status_code == 409
    assert verified.json()["code"] == "already_verified"
    missing = await api.client.post(USER_VERIFICATION.format(user_id=999999), headers=admin.headers)
    assert missing.status_code == 404
    other = await api.new_user()
    marked = await api.client.put(
        f"{USERS}{other.id}", json={"is_verified": True}, headers=admin.headers
    )
    assert marked.json()["is_verified"] is True
    assert (await api.me(other.tokens)).json()["is_verified"] is True


async def test_an_admin_moving_an_address_unverifies_it_and_tells_the_old_one(
    api: Api, smtp: MailServer
) -> None:
    admin = await api.admin()
    user = await api.new_user()
    await api.client.put(f"{USERS}{user.id}", json={"is_verified": True}, headers=admin.headers)
    moved = await api.client.put(
        f"{USERS}{user.id}", json={"email": NEW_ADDRESS}, headers=admin.headers
    )
    assert moved.status_code == 200
    assert moved.json()["email"] == NEW_ADDRESS
    assert moved.json()["is_verified"] is False
    notice = await _mail(smtp, user.email, "administrator")
    assert NEW_ADDRESS in text_of(notice)


async def test_an_export_holds_the_profile_and_the_devices(api: Api) -> None:
    user = await api.new_user()
    await api.tokens(user.email, DEFAULT_PASSWORD, user_agent="Mozilla/5.0 (X11; Linux x86_64)")
    exported = await api.client.get(MY_DATA, headers=user.headers)
    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert body["profile"]["email"] == user.email
    assert len(body["sessions"]) == 2
    events = [entry["event"] for entry in body["security_events"]]
    # Newest first; the second sign-in's event is there at once, before the trail's write.
    assert events == ["login_succeeded", "login_succeeded", "registered"]
    assert body["security_events"][0]["details"]["session_id"] in {
        session["id"] for session in body["sessions"]
    }
    assert "attachment" in exported.headers["content-disposition"]
    assert "password" not in exported.text
    api.client.cookies.clear()
    assert (await api.client.get(MY_DATA)).status_code == 401


FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)


async def test_a_sign_in_from_a_new_device_is_told_when_asked_for(
    mailed: Settings, smtp: MailServer, clock: OffsetClock
) -> None:
    async with serve(mailed.model_copy(update={"NOTIFY_NEW_DEVICE": True}), clock) as (_, api):
        user = await api.new_user()
        await _mails(smtp, user.email)  # the verification link; the first sign-in is no news
        await api.tokens(user.email, DEFAULT_PASSWORD)  # the same device again
        await api.tokens(user.email, DEFAULT_PASSWORD, user_agent=FIREFOX_ON_WINDOWS)
        notice = await _mail(smtp, user.email, "new sign-in")
        assert "Firefox 128 on Windows 10" in text_of(notice)
        assert "203.0.113.7" in text_of(notice)
        assert "https://auth.example.com/account/devices" in text_of(notice)
        await anyio.sleep(0.3)
        assert len(smtp.inbox.to(user.email)) == 2
        # Once every session has ended, even the first device is news again.
        clock.advance((mailed.REFRESH_TOKEN_EXPIRE_DAYS + 1) * 86400)
        await api.tokens(user.email, DEFAULT_PASSWORD)
        await _mail(smtp, user.email, "new sign-in", count=2)


async def test_no_new_device_notice_unless_asked_for(api: Api, smtp: MailServer) -> None:
    user = await api.new_user()
    await api.tokens(user.email, DEFAULT_PASSWORD, user_agent=FIREFOX_ON_WINDOWS)
    await _mails(smtp, user.email)
    await anyio.sleep(0.5)
    assert not any("new sign-in" in subject for subject in _subjects(smtp, user.email))
