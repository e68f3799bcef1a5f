"""Delivery through the outbox under faults: a mail server down, hung, refusing or untrusted,
a restart, two workers, a mail given up; TLS and passwords; mail to files; templates from a
folder; the headers of what is sent."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app.core.config import Settings
from app.domain.mail import Mail
from app.mail.render import MailRenderer
from app.mail.transport import transport_from_settings
from app.services.mail_delivery import lease_terms
from tests.clock import OffsetClock
from tests.conftest import REDIS_TEST_PREFIX, REDIS_TEST_URL, make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api
from tests.faults.tcp_proxy import TcpProxy
from tests.mail_server import MailServer, link_in, mail_server, text_of
from tests.mailing import PUBLIC_URL, Outbox, OutboxRow, log_events, mailed_settings
from tests.routes import FORGOT_PASSWORD, HEALTH, REGISTER
from tests.servers import running_server

SMTP_PASSWORD = "smtp-secret-0f-the-relay"


@pytest.fixture
async def outbox(database_url: str) -> AsyncIterator[Outbox]:
    box = Outbox(make_settings(database_url))
    try:
        yield box
    finally:
        await box.close()


async def _register(api: Api, count: int) -> list[str]:
    """`count` new accounts (each gets a verification mail); their addresses."""
    addresses = []
    for _ in range(count):
        response = await api.register()
        assert response.status_code == 201, response.text
        addresses.append(response.json()["email"])
    return addresses


async def _all_tried(outbox: Outbox, count: int, attempts: int = 1) -> None:
    """Wait until `count` mails have each failed `attempts` times."""
    await outbox.until(
        lambda rows: len(rows) == count and all(row.attempts >= attempts for row in rows)
    )


def _done_at_least(count: int) -> Callable[[list[OutboxRow]], bool]:
    return lambda rows: sum(bool(row.done_at) for row in rows) >= count


def _once_each(smtp: MailServer, expected: int) -> None:
    ids = smtp.inbox.message_ids()
    assert len(ids) == expected, ids
    assert set(ids.values()) == {1}, ids


async def test_mail_queued_while_the_server_is_down_arrives_once_it_is_up(
    database_url: str, outbox: Outbox, clock: OffsetClock
) -> None:
    with mail_server() as smtp:
        smtp.stop()
        async with serve(mailed_settings(database_url, smtp.port), clock) as (_, api):
            addresses = await _register(api, 4)
            for address in addresses:
                asked = await api.client.post(FORGOT_PASSWORD, json={"email": address})
                assert asked.status_code == 202
            await _all_tried(outbox, 8)
            assert smtp.inbox.all() == []
            smtp.start()
            # The backoff is capped at 0.2 s here, and the worker looks every 0.1 s.
            await smtp.inbox.total(8, within=5)
            await outbox.settled()
        _once_each(smtp, 8)
        for address in addresses:
            assert len(smtp.inbox.to(address)) == 2


async def test_mail_in_the_outbox_survives_a_restart(
    database_url: str, outbox: Outbox, clock: OffsetClock
) -> None:
    with mail_server() as smtp:
        smtp.stop()
        settings = mailed_settings(database_url, smtp.port)
        async with serve(settings, clock) as (_, api):
            [address] = await _register(api, 1)
            await _all_tried(outbox, 1)
        smtp.start()
        async with serve(settings, clock):
            await smtp.inbox.arrived(address)
            await outbox.settled()
        _once_each(smtp, 1)


def _register_over_http(url: str, count: int) -> None:
    with httpx.Client(base_url=url) as client:
        for index in range(count):
            stamp = f"{index}x{time.monotonic_ns()}"
            response = client.post(
                REGISTER,
                json={
                    "email": f"w{stamp}@example.com",
                    "username": f"w{stamp}",
                    "password": DEFAULT_PASSWORD,
                },
            )
            assert response.status_code == 201, response.text


async def test_two_service_processes_send_each_mail_once(
    database_url: str, outbox: Outbox, tmp_path: Path
) -> None:
    count = 40
    with mail_server() as smtp:
        smtp.stop()
        # A send that takes a while: both workers are at it together.
        smtp.inbox.on_accept = lambda: time.sleep(0.05)
        environment = {
            "DATABASE_URL": database_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "SMTP_SECURITY": "none",
            "MAIL_RETRY_MAX_SECONDS": "0.2",
            "MAIL_POLL_SECONDS": "0.1",
            "RATE_LIMIT_REGISTER": "1000/minute",
            "LOG_LEVEL": "INFO",
        }
        if database_url.startswith("postgresql"):
            environment |= {"REDIS_URL": REDIS_TEST_URL, "REDIS_KEY_PREFIX": REDIS_TEST_PREFIX}
        first, second = tmp_path / "first", tmp_path / "second"
        first.mkdir()
        second.mkdir()
        with (
            running_server(first, environment) as (first_url, _),
            running_server(second, environment) as (second_url, _),
        ):
            for url in (first_url, second_url):
                await asyncio.to_thread(_register_over_http, url, count // 2)
            await _all_tried(outbox, count)
            smtp.start()
            await smtp.inbox.total(count, within=20)
            await outbox.settled()
    _once_each(smtp, count)
    for workdir in (first, second):
        assert '"event":"mail_sent"' in (workdir / "server.log").read_text()


async def test_starttls_with_the_certificate_trusted(
    database_url: str, outbox: Outbox, tmp_path: Path
) -> None:
    with mail_server(tmp_path) as smtp:
        settings = mailed_settings(
            database_url,
            smtp.port,
            SMTP_SECURITY="starttls",
            SMTP_CA_FILE=str(tmp_path / "smtp.pem"),
        )
        async with serve(settings) as (_, api):
            [address] = await _register(api, 1)
            await smtp.inbox.arrived(address)


async def test_an_untrusted_certificate_is_refused_and_the_mail_kept_until_trusted(
    database_url: str, outbox: Outbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mail_server(tmp_path) as smtp:
        untrusting = mailed_settings(database_url, smtp.port, SMTP_SECURITY="starttls")
        async with serve(untrusting) as (_, api):
            [address] = await _register(api, 1)
            [row] = await outbox.until(lambda rows: bool(rows) and rows[0].attempts >= 2)
        assert row.done_at is None
        assert "CERTIFICATE_VERIFY_FAILED" in (row.last_error or "")
        assert smtp.inbox.all() == []
        logged = capsys.readouterr().err
        failures = [e for e in log_events(logged) if e["event"] == "mail_send_failed"]
        assert failures
        assert all("CERTIFICATE_VERIFY_FAILED" in failure["reason"] for failure in failures)
        token = str(row.payload["token"])
        assert token not in logged
        assert token.partition(".")[2] not in logged
        trusting = untrusting.model_copy(update={"SMTP_CA_FILE": str(tmp_path / "smtp.pem")})
        async with serve(trusting):
            await smtp.inbox.arrived(address)
            await outbox.settled()
        _once_each(smtp, 1)


async def test_implicit_tls(database_url: str, outbox: Outbox, tmp_path: Path) -> None:
    with mail_server(tmp_path, security="tls") as smtp:
        settings = mailed_settings(
            database_url, smtp.port, SMTP_SECURITY="tls", SMTP_CA_FILE=str(tmp_path / "smtp.pem")
        )
        async with serve(settings) as (_, api):
            [address] = await _register(api, 1)
            await smtp.inbox.arrived(address)


async def test_smtp_auth_over_starttls(
    database_url: str, outbox: Outbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mail_server(tmp_path, credentials=("mailer", SMTP_PASSWORD)) as smtp:
        settings = mailed_settings(
            database_url,
            smtp.port,
            SMTP_SECURITY="starttls",
            SMTP_CA_FILE=str(tmp_path / "smtp.pem"),
            SMTP_USERNAME="mailer",
            SMTP_PASSWORD=SecretStr("not-" + SMTP_PASSWORD),
        )
        async with serve(settings) as (_, api):
            [address] = await _register(api, 1)
            [row] = await outbox.until(lambda rows: bool(rows) and rows[0].attempts >= 2)
        assert "535" in (row.last_error or "")
        assert smtp.inbox.all() == []
        right = settings.model_copy(update={"SMTP_PASSWORD": SecretStr(SMTP_PASSWORD)})
        async with serve(right):
            await smtp.inbox.arrived(address)
            await outbox.settled()
        assert SMTP_PASSWORD not in capsys.readouterr().err


async def test_a_hung_mail_server_times_out_and_the_service_stays_up(
    database_url: str, outbox: Outbox
) -> None:
    with mail_server() as smtp:
        proxy = TcpProxy("127.0.0.1", smtp.port)
        await proxy.start()
        proxy.hang()
        try:
            settings = mailed_settings(database_url, proxy.port, SMTP_TIMEOUT_SECONDS=1.5)
            async with serve(settings) as (_, api):
                [address] = await _register(api, 1)
                [row] = await outbox.until(lambda rows: bool(rows) and rows[0].attempts >= 1)
                assert "TimeoutError" in (row.last_error or "")
                # The next attempt waits on the hung server meanwhile.
                for _ in range(3):
                    started = time.monotonic()
                    health = await api.client.get(HEALTH)
                    assert health.status_code == 200
                    assert health.json()["status"] == "ok"
                    assert (await api.login(address, DEFAULT_PASSWORD)).status_code == 200
                    assert time.monotonic() - started < 0.75
                proxy.resume()
                await smtp.inbox.arrived(address)
                await outbox.settled()
        finally:
            await proxy.cut()
        _once_each(smtp, 1)


async def test_a_mail_is_given_up_after_its_time_and_forgotten(
    database_url: str, outbox: Outbox, clock: OffsetClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with mail_server() as smtp:
        smtp.stop()
        settings = mailed_settings(database_url, smtp.port, MAIL_GIVE_UP_HOURS=2)
        async with serve(settings, clock) as (_, api):
            [address] = await _register(api, 1)
            [row] = await outbox.until(lambda rows: bool(rows) and rows[0].attempts >= 1)
            token = str(row.payload["token"])
            clock.advance(2 * 3600 + 60)
            [row] = await outbox.until(lambda rows: rows[0].done_at is not None)
            smtp.start()
            await asyncio.sleep(1.5)
        assert (row.outcome, row.payload, row.address) == ("failed", {}, "")
        assert smtp.inbox.all() == []
        logged = capsys.readouterr().err
        assert any(e["event"] == "mail_given_up" for e in log_events(logged))
        assert token not in logged
        assert address not in [e.get("address") for e in log_events(logged)]


async def test_a_permanent_refusal_is_not_retried(
    database_url: str, outbox: Outbox, capsys: pytest.CaptureFixture[str]
) -> None:
    with mail_server() as smtp:
        smtp.inbox.refused = {"user-gone@example.com"}
        async with serve(mailed_settings(database_url, smtp.port)) as (_, api):
            registered = await api.register(email="user-gone@example.com")
            assert registered.status_code == 201
            [row] = await outbox.until(lambda rows: bool(rows) and rows[0].done_at is not None)
            assert (row.outcome, row.payload, row.address) == ("failed", {}, "")
            # Other mail still goes.
            [other] = await _register(api, 1)
            await smtp.inbox.arrived(other)
        assert smtp.inbox.offered.count("user-gone@example.com") == 1
    [refused] = [e for e in log_events(capsys.readouterr().err) if e["event"] == "mail_refused"]
    assert refused["mail_id"] == row.id
    assert "550" in refused["reason"]


async def test_a_mail_retried_for_very_long_keeps_its_capped_backoff(
    database_url: str, outbox: Outbox
) -> None:
    """A server down for long enough (about 17 hours with MAIL_RETRY_MAX_SECONDS=60) that the
    attempts pass a thousand: the backoff stays capped, and the mail goes once the server is
    back, with the mails leased beside it."""
    with mail_server() as smtp:
        smtp.stop()
        async with serve(mailed_settings(database_url, smtp.port)) as (_, api):
            addresses = await _register(api, 3)
            rows = await outbox.until(lambda rows: len(rows) == 3 and rows[0].attempts >= 1)
            for row in rows:
                await outbox.set_attempts(row.id, 1100)
            await _all_tried(outbox, 3, attempts=1101)
            smtp.start()
            for address in addresses:
                await smtp.inbox.arrived(address, within=5)


async def _queued_while_down(
    settings: Settings, clock: OffsetClock, outbox: Outbox, count: int
) -> None:
    """`count` verification mails, each tried once while the mail server was down, all due
    when the next app starts (its worker then leases them together)."""
    async with serve(settings, clock) as (_, api):
        await _register(api, count)
        await _all_tried(outbox, count)
    clock.advance(1)


async def test_a_worker_begins_no_send_its_lease_may_not_cover(
    database_url: str, outbox: Outbox, clock: OffsetClock
) -> None:
    """A slow relay (SMTP_TIMEOUT_SECONDS=30), each send taking nearly as long as a send may
    (by the app's clock): the lease covers the longest send, a send begins only while the lease
    covers it, and the rest of the batch waits for the lease to end, then goes, each once."""
    with mail_server() as smtp:
        smtp.stop()
        settings = mailed_settings(database_url, smtp.port, SMTP_TIMEOUT_SECONDS=30)
        longest_send = transport_from_settings(settings).longest_send
        lease, budget = lease_terms(longest_send)
        assert lease >= budget + timedelta(seconds=longest_send)
        await _queued_while_down(settings, clock, outbox, 4)
        step = 0.9 * longest_send
        smtp.inbox.on_accept = lambda: clock.advance(step)
        smtp.start()
        # Sends begin at 0, step, 2 step... while the lease left covers one: two of them, where
        # a lease that did not grow with the longest send (two minutes) would cover one.
        fitting = int((lease - budget).total_seconds() // step) + 1
        assert fitting == 2
        async with serve(settings, clock):
            await smtp.inbox.total(fitting)
            rows = await outbox.until(_done_at_least(fitting))
            # Polled many times meanwhile: no worker takes a mail while it is leased.
            await asyncio.sleep(0.5)
            assert len(smtp.inbox.all()) == fitting
            rows = await outbox.rows()
            waiting = [row for row in rows if row.done_at is None]
            assert len(waiting) == 2
            [lease_end] = {row.lease_until for row in waiting}
            assert lease_end is not None
            # Every send ended within the lease it began under.
            assert all(row.done_at <= lease_end for row in rows if row.done_at)
            clock.advance((lease_end - clock.now()).total_seconds() + 1)
            # The two left fit in the next worker's lease.
            await smtp.inbox.total(4)
            await outbox.settled()
        _once_each(smtp, 4)


async def test_a_send_is_cut_off_after_the_longest_a_send_may_take(
    database_url: str, outbox: Outbox
) -> None:
    """A server whose every answer comes just within SMTP_TIMEOUT_SECONDS: the whole exchange
    would outlast the longest send (the lease is sized for it), so it is cut off, and retried."""
    with mail_server() as smtp:
        settings = mailed_settings(database_url, smtp.port, SMTP_TIMEOUT_SECONDS=0.5)
        smtp.inbox.answer_after = 0.4
        async with serve(settings) as (_, api):
            [address] = await _register(api, 1)
            [row] = await outbox.until(lambda rows: bool(rows) and rows[0].attempts >= 1)
            # The send's own deadline, not a step's (aiosmtplib's SMTPTimeoutError).
            assert (row.last_error or "").startswith("TimeoutError"), row.last_error
            smtp.inbox.answer_after = 0
            await smtp.inbox.arrived(address)
            await outbox.settled()


async def test_the_mails_of_a_worker_that_died_wait_for_its_lease_then_go_once(
    database_url: str, outbox: Outbox, clock: OffsetClock
) -> None:
    with mail_server() as smtp:
        smtp.stop()
        settings = mailed_settings(database_url, smtp.port)
        await _queued_while_down(settings, clock, outbox, 3)
        lease, _ = lease_terms(transport_from_settings(settings).longest_send)
        leased = await outbox.lease_all(now=clock.now(), lease=lease)
        assert len(leased) == 3
        smtp.start()
        async with serve(settings, clock):
            await asyncio.sleep(0.6)
            assert smtp.inbox.all() == []
            assert all(row.done_at is None for row in await outbox.rows())
            clock.advance(lease.total_seconds() + 1)
            await smtp.inbox.total(3)
            rows = await outbox.settled()
        _once_each(smtp, 3)
        assert sorted(row.id for row in rows) == sorted(leased)


async def test_mail_to_files_without_a_mail_server(
    database_url: str, outbox: Outbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mail"
    settings = mailed_settings(database_url, None, MAIL_FOLDER=str(folder))
    async with serve(settings) as (_, api):
        [address] = await _register(api, 1)
        assert (await api.client.post(FORGOT_PASSWORD, json={"email": address})).status_code == 202
        await outbox.until(lambda rows: len(rows) == 2 and all(row.done_at for row in rows))
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2
    assert not list(folder.glob("*.partial"))
    messages = [message_from_bytes(file.read_bytes(), policy=policy.default) for file in files]
    links = []
    for file, message in zip(files, messages, strict=True):
        assert isinstance(message, EmailMessage)
        assert message["To"] == address
        assert message["From"] == settings.MAIL_FROM
        assert f"<{file.stem}>" == message["Message-ID"]
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        links.append(link_in(message))
        assert links[-1].startswith(f"{PUBLIC_URL}/account/")
    subjects = sorted(str(message["Subject"]) for message in messages)
    assert subjects == [
        "Confirm your email address for FastAPI Auth Service",
        "Reset your FastAPI Auth Service password",
    ]
    sent = [e for e in log_events(capsys.readouterr().err) if e["logger"] == "app.mail"]
    assert sorted(str(e["link"]) for e in sent) == sorted(links)


async def test_templates_from_a_folder_replace_the_built_in_ones(
    database_url: str, outbox: Outbox, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "verify_email.subject.txt").write_text("Welcome aboard {{ username }}\n")
    (templates / "verify_email.txt").write_text("Our own words. Click {{ link }}\n")
    with mail_server() as smtp:
        settings = mailed_settings(database_url, smtp.port, MAIL_TEMPLATES_DIR=str(templates))
        async with serve(settings) as (_, api):
            registered = await api.register()
            user = registered.json()
            [mail] = await smtp.inbox.arrived(user["email"])
    assert mail["Subject"] == f"Welcome aboard {user['username']}"
    assert text_of(mail).startswith("Our own words. Click https://auth.example.com/account/verify")
    # What the folder does not replace stays built in.
    html = next(part for part in mail.walk() if part.get_content_type() == "text/html")
    assert "Confirm my email address" in str(html.get_payload(decode=True))


async def test_the_headers_of_a_mail(database_url: str, outbox: Outbox) -> None:
    with mail_server() as smtp:
        settings = mailed_settings(database_url, smtp.port, MAIL_FROM="Accounts <auth@example.org>")
        async with serve(settings) as (_, api):
            [address] = await _register(api, 1)
            [mail] = await smtp.inbox.arrived(address)
            [row] = await outbox.settled()
    assert mail["To"] == address
    assert mail["From"] == "Accounts <auth@example.org>"
    assert mail["Subject"] == "Confirm your email address for FastAPI Auth Service"
    assert mail["Message-ID"] == f"<{row.id}@example.org>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Date"]
    assert mail.get_all("Bcc") is None
    assert mail.get_all("Cc") is None


@pytest.mark.parametrize(
    "username", ["evil\r\nBcc: thief@example.com", "evil\nBcc: thief@example.com", "x\rY: z"]
)
async def test_registration_refuses_a_line_break_in_a_username(
    database_url: str, outbox: Outbox, username: str
) -> None:
    with mail_server() as smtp:
        async with serve(mailed_settings(database_url, smtp.port)) as (_, api):
            response = await api.register(username=username)
            assert response.status_code == 422
            refused = await api.register(email="a@example.com\r\nBcc: thief@example.com")
            assert refused.status_code == 422
    assert await outbox.rows() == []


@pytest.mark.parametrize(
    "address",
    [
        "victim@example.com\r\nBcc: thief@example.com",
        "victim@example.com\nBcc: thief@example.com",
        "victim@example.com\rBcc: thief@example.com",
    ],
)
def test_the_renderer_never_writes_a_header_from_a_line_break(address: str) -> None:
    renderer = MailRenderer(sender="Auth <auth@example.org>", domain="example.org", overrides=None)
    context = {
        "service": "Auth\r\nBcc: thief@example.com",
        "public_url": PUBLIC_URL,
        "username": "evil\r\nBcc: thief@example.com",
        "email": "victim@example.com",
        "link": f"{PUBLIC_URL}/account/verify?token=a.b",
        "token": "a.b",
        "expires_minutes": 5,
    }
    message = renderer.message(
        kind="verify_email", to="victim@example.com", message_id="m1", context=context
    )
    assert "\r" not in str(message["Subject"])
    assert "\n" not in str(message["Subject"])
    assert message.get_all("Bcc") is None
    reparsed = message_from_bytes(message.as_bytes())
    assert reparsed.get_all("Bcc") is None
    with pytest.raises(ValueError, match=r"linefeed|carriage"):
        renderer.message(kind="verify_email", to=address, message_id="m2", context=context)


async def test_a_done_mail_keeps_no_address_even_in_the_servers_error(
    database_url: str, outbox: Outbox
) -> None:
    settings = mailed_settings(database_url, None, MAIL_POLL_SECONDS=3600)
    address = "quoted@example.com"
    # The app migrates the database; its worker waits an hour before looking for mail.
    async with serve(settings):
        mail = Mail(id="quoted-mail", kind="password_changed", address=address)
        store, now = outbox.store, datetime.now(UTC)
        await store.enqueue(mail, now=now)
        await store.retry(mail, at=now, error=f"451 4.2.0 <{address}>: mailbox busy, try later")
        await store.finish(mail, outcome="sent", now=now)
    [row] = await outbox.rows()
    assert row.address == ""
    assert row.last_error == "451 4.2.0 <<address>>: mailbox busy, try later"
