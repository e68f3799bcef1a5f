"""The account's life by email, end to end through the API and a real SMTP server."""

from collections.abc import AsyncIterator
from email.message import Message

import anyio
import pytest

from app.api.deps import ServiceApp
from app.core.config import Settings
from tests.clock import OffsetClock
from tests.conftest import serve
from tests.factories import DEFAULT_PASSWORD, Api
from tests.mail_server import MailServer, text_of, token_in

NEW_PASSWORD = "a brand new passphrase for this test"


@pytest.fixture
async def mailing(
    settings: Settings, smtp: MailServer, clock: OffsetClock
) -> AsyncIterator[tuple[ServiceApp, Api]]:
    mailed = settings.model_copy(
        update={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": smtp.port,
            "SMTP_SECURITY": "none",
            "PUBLIC_URL": "https://auth.example.com",
            "MAIL_RETRY_MAX_SECONDS": 0.5,
        }
    )
    async with serve(mailed, clock) as served:
        yield served


async def _mails(smtp: MailServer, address: str, count: int = 1) -> list[Message]:
    return await anyio.to_thread.run_sync(lambda: smtp.inbox.wait_for(address, count))


async def test_registration_mails_a_link_that_verifies_the_address(
    mailing: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    _, api = mailing
    user = await api.new_user()
    assert (await api.me(user.tokens)).json()["is_verified"] is False
    [mail] = await _mails(smtp, user.email)
    assert "https://auth.example.com/account/verify?token=" in text_of(mail)
    verified = await api.client.post("/api/v1/auth/verify", json={"token": token_in(mail)})
    assert verified.status_code == 200, verified.text
    assert verified.json()["is_verified"] is True
    again = await api.client.post("/api/v1/auth/verify", json={"token": token_in(mail)})
    assert again.status_code == 400
    assert again.json()["code"] == "email_token_used"


async def test_a_password_reset_ends_every_session_and_lifts_the_lockout(
    mailing: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    _, api = mailing
    user = await api.new_user()
    for _ in range(3):
        await api.login(user.email, "wrong password!")
    asked = await api.client.post("/api/v1/auth/forgot-password", json={"email": user.email})
    assert asked.status_code == 202
    reset_mail = [m for m in await _mails(smtp, user.email, 2) if "reset" in m["Subject"].lower()]
    token = token_in(reset_mail[0])
    done = await api.client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 200, done.text
    assert (await api.me(user.tokens)).status_code == 401
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 401
    assert (await api.login(user.email, NEW_PASSWORD)).status_code == 200
    notices = await _mails(smtp, user.email, 3)
    assert any("password changed" in m["Subject"].lower() for m in notices)


async def test_unknown_addresses_get_the_same_answer_and_no_mail(
    mailing: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    _, api = mailing
    user = await api.new_user()
    await _mails(smtp, user.email)
    answers = []
    for address in (user.email, "nobody-here@example.com"):
        for path in ("/api/v1/auth/forgot-password", "/api/v1/auth/request-verify-token"):
            answer = await api.client.post(path, json={"email": address})
            answers.append((path, answer.status_code, answer.json()))
    assert answers[:2] == answers[2:]
    await _mails(smtp, user.email, 3)
    await anyio.sleep(1.5)
    assert smtp.inbox.to("nobody-here@example.com") == []
