"""The operator's CLI, on real stores, checked through the API and the stores it shares.

Commands run in a worker thread (each starts its own event loop, as `python -m app.cli` does)
and read their settings from the environment, as an operator's would.
"""

import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from app.cli import cli
from app.core.config import Settings
from app.domain.audit import AuditEntry
from app.domain.mail import Mail, NewEmailToken, TokenPurpose
from app.domain.sessions import SessionRecord
from app.storage import sql_sessions
from app.storage.factory import Storage, build_storage
from app.storage.mail import SENT
from tests.clock import OffsetClock
from tests.conftest import make_settings
from tests.factories import ADMIN_EMAIL, DEFAULT_PASSWORD, IPHONE_UA, Api

USERS = "/api/v1/users/"
NEW_PASSWORD = "a brand new passphrase"
LAST_ADMIN = "error: This change would leave the service without an active admin.\n"


def _environment(settings: Settings) -> dict[str, str]:
    """The settings as the environment variables an operator would set."""
    environment: dict[str, str] = {}
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, list):
            environment[name] = json.dumps([str(item) for item in value])
        elif isinstance(value, bool):
            environment[name] = "true" if value else "false"
        else:
            environment[name] = str(value)
    return environment


def _use_settings(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, working_directory: Path
) -> Settings:
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    for name, value in _environment(settings).items():
        monkeypatch.setenv(name, value)
    # Settings also read `.env` from the working directory: this one has none.
    monkeypatch.chdir(working_directory)
    return settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The served app's settings, its mail worker idle: the CLI runs in this process, and lines
    the worker logged while a command ran would be read as the command's."""
    return settings.model_copy(update={"MAIL_POLL_SECONDS": 3600})


@pytest.fixture
def cli_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The test settings (on both backends), given to the CLI through the environment."""
    return _use_settings(monkeypatch, settings, tmp_path)


async def run(*args: str, stdin: str | None = None) -> Result:
    invoke = partial(CliRunner().invoke, cli, list(args), input=stdin, catch_exceptions=False)
    return await anyio.to_thread.run_sync(invoke)


def _refused(result: Result, code: int = 1) -> str:
    """The one line a refused command prints to stderr, having printed nothing else."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    return result.stderr


def _events(result: Result) -> list[dict[str, Any]]:
    """The security events a command logged (JSON lines on stderr)."""
    return [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]


async def _is_admin(api: Api, headers: dict[str, str]) -> bool:
    return (await api.client.get(USERS, headers=headers)).status_code == 200


async def test_migrate_prepares_the_database(cli_settings: Settings) -> None:
    # No admin yet: a new SQLite file has no tables, the test PostgreSQL database empty ones.
    assert (await run("sessions", "list", ADMIN_EMAIL)).exit_code != 0
    migrated = await run("migrate")
    assert migrated.exit_code == 0, migrated.output
    assert migrated.stdout == "database is up to date\n"
    assert (await run("sessions", "list", ADMIN_EMAIL)).exit_code == 0
    assert (await run("migrate")).exit_code == 0


async def test_a_database_never_migrated_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _use_settings(monkeypatch, make_settings(f"sqlite:///{tmp_path}/new.db"), tmp_path)
    assert _refused(await run("promote", ADMIN_EMAIL), code=3) == (
        "error: the database schema does not match this version:"
        " run `python -m app.cli migrate` first\n"
    )


async def test_create_user(api: Api, cli_settings: Settings) -> None:
    created = await run(
        "create-user", "New@Example.com", "newbie", "--password-stdin", stdin=f"{NEW_PASSWORD}\n"
    )
    assert created.exit_code == 0, created.output
    tokens = await api.tokens("new@example.com", NEW_PASSWORD)
    me = (await api.me(tokens)).json()
    assert created.stdout == f"{me['id']}\n"
    assert (me["username"], me["is_active"], me["is_admin"]) == ("newbie", True, False)
    assert me["is_verified"] is False
    [event] = _events(created)
    assert event["event"] == "admin_changed_user"
    assert (event["user_id"], event["via"], event["admin_id"]) == (me["id"], "cli", None)
    assert NEW_PASSWORD not in created.stderr

    admin = await run(
        "create-user",
        "boss@example.com",
        "boss",
        "--admin",
        "--password-stdin",
        stdin=f"{NEW_PASSWORD}\n",
    )
    assert admin.exit_code == 0, admin.output
    assert await _is_admin(api, (await api.tokens("boss@example.com", NEW_PASSWORD)).headers)
    assert _events(admin)[0]["is_admin"] is True


async def test_create_user_mails_a_verification_link_unless_told_it_is_verified(
    api: Api, cli_settings: Settings
) -> None:
    storage = build_storage(cli_settings)
    try:
        queued = await storage.mail.pending()
        stdin = f"{NEW_PASSWORD}\n"
        assert (
            await run("create-user", "a@x.org", "aaa", "--password-stdin", stdin=stdin)
        ).exit_code == 0
        assert await storage.mail.pending() == queued + 1
        trusted = await run(
            "create-user", "b@x.org", "bbb", "--verified", "--password-stdin", stdin=stdin
        )
        assert trusted.exit_code == 0, trusted.output
        assert await storage.mail.pending() == queued + 1
    finally:
        await storage.close()
    me = (await api.me(await api.tokens("b@x.org", NEW_PASSWORD))).json()
    assert me["is_verified"] is True


async def test_create_user_refusals_change_nothing(api: Api, cli_settings: Settings) -> None:
    admin = await api.admin()
    line = f"{NEW_PASSWORD}\n"
    refusals = [
        (("taken@x.org", "ADMIN", "--password-stdin"), line, 1, "username is already taken"),
        ((ADMIN_EMAIL.upper(), "other", "--password-stdin"), line, 1, "email is already"),
        (("weak@x.org", "weak", "--password-stdin"), "password1\n", 1, "too common"),
        (("short@x.org", "short", "--password-stdin"), "short\n", 1, "at least 8"),
        (("not-an-email", "someone", "--password-stdin"), line, 2, "EMAIL: "),
        (("bad@x.org", "a", "--password-stdin"), line, 2, "USERNAME: "),
        (("empty@x.org", "empty", "--password-stdin"), "", 2, "no password on stdin"),
        (("pipe@x.org", "pipe"), line, 2, "stdin is not a terminal"),
    ]
    for args, stdin, code, message in refusals:
        result = await run("create-user", *args, stdin=stdin)
        assert message in _refused(result, code), (args, result.stderr)
    listing = (await api.client.get(USERS, headers=admin.headers)).json()
    assert listing["total"] == 1


PROMPTS = (b"Password: ", b"Repeat for confirmation: ")


def _read_until(primary: int, prompts: tuple[bytes, ...], *, seconds: float = 30) -> bytes:
    """What the terminal shows until it ends with one of `prompts`, or until the program
    closes it."""
    shown = b""
    deadline = time.monotonic() + seconds
    while not shown.endswith(prompts):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"waited for {prompts!r}, saw {shown!r}"
        if select.select([primary], [], [], remaining)[0]:
            try:
                chunk = os.read(primary, 1024)
            except OSError:  # EIO: every end of the terminal is closed.
                return shown
            if not chunk:
                return shown
            shown += chunk
    return shown


def _on_a_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run `python -m app.cli` with a pseudo-terminal as stdin, answering each prompt."""
    primary, secondary = pty.openpty()
    # A new session has no controlling terminal, so the password prompt reads the pty given
    # as stdin rather than the terminal pytest may run in.
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    try:
        shown = b""
        for answer in answers:
            shown += _read_until(primary, PROMPTS)
            os.write(primary, answer.encode() + b"\n")
        shown += _read_until(primary, ())
        return process.wait(timeout=30), shown.decode()
    finally:
        os.close(primary)


async def test_passwords_are_asked_twice_on_a_terminal(api: Api, cli_settings: Settings) -> None:
    user = await api.new_user()
    answers = [NEW_PASSWORD, "not the same passphrase", NEW_PASSWORD, NEW_PASSWORD]
    code, shown = await anyio.to_thread.run_sync(
        _on_a_terminal, ["set-password", user.email], answers
    )
    assert code == 0, shown
    assert "do not match" in shown
    assert NEW_PASSWORD not in shown
    assert (await api.login(user.email, NEW_PASSWORD)).status_code == 200


async def test_set_password_ends_every_session(
    api: Api, clock: OffsetClock, cli_settings: Settings
) -> None:
    user = await api.new_user()
    other = await api.tokens(user.email, DEFAULT_PASSWORD)
    weak = await run("set-password", user.email, "--password-stdin", stdin="password1\n")
    assert "too common" in _refused(weak)
    assert (await api.me(user.tokens)).status_code == 200
    result = await run("set-password", user.email, "--password-stdin", stdin=f"{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{user.email}: password set; every session ended\n"
    [event] = _events(result)
    assert (event["event"], event["fields"], event["via"]) == (
        "admin_changed_user",
        ["password"],
        "cli",
    )
    # The audit trail has it too, written before the command ended.
    storage = build_storage(cli_settings)
    try:
        [kept] = [
            e for e in await storage.audit.of_user(user.id, limit=10) if e.event == event["event"]
        ]
    finally:
        await storage.close()
    assert kept.details == {"fields": ["password"], "via": "cli", "admin_id": None}
    clock.advance(cli_settings.SESSION_CACHE_SECONDS)
    assert (await api.me(user.tokens)).status_code == 401
    assert (await api.me(other)).status_code == 401
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 401
    assert (await api.login(user.email, NEW_PASSWORD)).status_code == 200


async def test_deactivate_and_activate(
    api: Api, clock: OffsetClock, cli_settings: Settings
) -> None:
    user = await api.new_user()
    result = await run("deactivate", user.email.upper())
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{user.email}: inactive; every session ended\n"
    clock.advance(cli_settings.SESSION_CACHE_SECONDS)
    assert (await api.me(user.tokens)).status_code == 401
    assert (await api.refresh(user.tokens.refresh_token)).status_code == 401
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 401
    result = await run("activate", user.email)
    assert result.stdout == f"{user.email}: active\n"
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200


async def test_promote_and_demote(api: Api, clock: OffsetClock, cli_settings: Settings) -> None:
    user = await api.new_user()
    assert not await _is_admin(api, user.headers)
    promoted = await run("promote", user.email)
    assert promoted.stdout == f"{user.email}: admin\n"
    [event] = _events(promoted)
    assert (event["event"], event["user_id"], event["fields"]) == (
        "admin_changed_user",
        user.id,
        ["is_admin"],
    )
    assert (event["admin_id"], event["via"]) == (None, "cli")
    clock.advance(cli_settings.SESSION_CACHE_SECONDS)
    assert await _is_admin(api, user.headers)
    demoted = await run("demote", user.email)
    assert demoted.stdout == f"{user.email}: no longer an admin\n"
    clock.advance(cli_settings.SESSION_CACHE_SECONDS)
    assert not await _is_admin(api, user.headers)


async def test_the_last_admin_stays(api: Api, clock: OffsetClock, cli_settings: Settings) -> None:
    admin = await api.admin()
    for command in ("demote", "deactivate"):
        result = await run(command, ADMIN_EMAIL)
        assert _refused(result) == LAST_ADMIN
    clock.advance(cli_settings.SESSION_CACHE_SECONDS)
    # Nothing changed: the admin's session still works and still has its rights.
    assert await _is_admin(api, admin.headers)


async def test_unknown_emails_are_refused(api: Api, cli_settings: Settings) -> None:
    commands = [
        ["set-password", "--password-stdin"],
        ["activate"],
        ["deactivate"],
        ["promote"],
        ["demote"],
        ["sessions", "list"],
        ["sessions", "revoke", "--all"],
    ]
    for command in commands:
        result = await run(*command, "nobody@example.com", stdin=f"{NEW_PASSWORD}\n")
        assert _refused(result) == "error: No user has the email nobody@example.com.\n"


async def test_sessions_list_and_revoke(
    api: Api, clock: OffsetClock, cli_settings: Settings
) -> None:
    user = await api.new_user()
    phone = await api.tokens(user.email, DEFAULT_PASSWORD, user_agent=IPHONE_UA)
    stranger = await api.new_user()
    listed = await run("sessions", "list", user.email)
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "DEVICE", "IP", "CREATED", "LAST", "SEEN", "EXPIRES"]
    assert len(rows) == 2
    # Newest first.
    assert rows[0].startswith(phone.session_id)
    assert "iOS" in rows[0]
    assert "mobile" in rows[0]
    assert "203.0.113.7" in rows[0]
    assert rows[1].startswith(user.tokens.session_id)

    for args in ((), (phone.session_id, "--all")):
        assert _refused(await run("sessions", "revoke", user.email, *args), code=2) == (
            "error: name one SESSION_ID, or --all\n"
        )
    # Another user's session is not this user's to end.
    foreign = await run("sessions", "revoke", user.email, stranger.tokens.session_id)
    assert _refused(foreign) == "error: Session not found.\n"

    one = await run("sessions", "revoke", user.email, phone.session_id)
    assert one.stdout == "1 session ended\n"
    assert _events(one)[0]["via"] == "cli"
    clock.advance(cli_settings.SESSION_CACHE_SECONDS)
    assert (await api.me(phone)).status_code == 401
    assert (await api.me(user.tokens)).status_code == 200
    again = await run("sessions", "revoke", user.email, phone.session_id)
    assert _refused(again) == "error: Session not found.\n"

    every = await run("sessions", "revoke", user.email, "--all")
    assert every.stdout == "1 session ended\n"
    clock.advance(cli_settings.SESSION_CACHE_SECONDS)
    assert (await api.me(user.tokens)).status_code == 401
    assert (await api.me(stranger.tokens)).status_code == 200
    assert len((await run("sessions", "list", user.email)).stdout.splitlines()) == 1


def _session(session_id: str, user_id: int, *, expires_at: datetime) -> SessionRecord:
    now = datetime.now(UTC)
    return SessionRecord(
        id=session_id,
        user_id=user_id,
        created_at=now - timedelta(days=8),
        last_seen_at=now - timedelta(days=8),
        expires_at=expires_at,
        ip_address=None,
        user_agent=None,
        browser="Other",
        os="Other",
        device_type="other",
        refresh_jti=f"jti-{session_id}",
        refresh_issued_at=now - timedelta(days=8),
    )


async def _stage_mail(storage: Storage, user_id: int, now: datetime) -> None:
    """A mail sent eight days ago and one not yet sent, an expired token and a live one."""
    week_ago = now - timedelta(days=8)
    for token_id, expires_at in (
        ("dead-token", now - timedelta(minutes=1)),
        ("live-token", now + timedelta(hours=1)),
    ):
        token = NewEmailToken(
            id=token_id,
            user_id=user_id,
            purpose=TokenPurpose.RESET_PASSWORD,
            email="someone@example.com",
            secret_hash="0" * 64,
            created_at=week_ago,
            expires_at=expires_at,
        )
        await storage.mail.issue(
            token,
            Mail(id=f"mail-{token_id}", kind="reset_password", address="someone@example.com"),
            now=week_ago,
        )
    [sent, _] = await storage.mail.claim(now=week_ago, lease=timedelta(minutes=1), limit=2)
    await storage.mail.finish(sent, outcome=SENT, now=week_ago)


async def test_purge_removes_what_has_ended_and_keeps_what_lives(
    api: Api, cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await api.new_user()
    now = datetime.now(UTC)
    expired = [f"expired{n}" for n in range(3)]
    revoked = [f"revoked{n}" for n in range(2)]
    storage = build_storage(cli_settings)
    try:
        for session_id in [*expired, *revoked, "live"]:
            ends = now - timedelta(hours=1) if session_id in expired else now + timedelta(days=1)
            await storage.sessions.create(_session(session_id, user.id, expires_at=ends))
        for session_id in revoked:
            assert await storage.sessions.revoke(session_id, user_id=user.id, now=now)
        await storage.attempts.count(
            "ended", now=now - timedelta(hours=1), window=timedelta(minutes=1)
        )
        await storage.attempts.count("current", now=now, window=timedelta(hours=1))
        queued = await storage.mail.pending()
        await _stage_mail(storage, user.id, now)
        retention = timedelta(days=cli_settings.AUDIT_RETENTION_DAYS)
        await storage.audit.append(
            [
                AuditEntry(user.id, "staged_too_old", now - retention - timedelta(minutes=1)),
                AuditEntry(user.id, "staged_still_kept", now - retention + timedelta(minutes=1)),
            ]
        )

        # Small batches, to see that purge goes on until none is left.
        monkeypatch.setattr(sql_sessions, "PURGE_BATCH", 2)
        result = await run("purge")
        assert result.exit_code == 0, result.output
        if cli_settings.REDIS_URL:
            # Redis dropped the ended sessions itself, and drops the ended counter at its end.
            assert result.stdout == (
                "sessions: 0 removed (redis, which expires them itself)\n"
                "attempt counters: 0 removed (redis, which expires them itself)\n"
                "mails: 1 removed (database)\nemail tokens: 1 removed (database)\n"
                "audit events: 1 removed (database)\n"
            )
        else:
            assert result.stdout == (
                "sessions: 5 removed (database)\nattempt counters: 1 removed (database)\n"
                "mails: 1 removed (database)\nemail tokens: 1 removed (database)\n"
                "audit events: 1 removed (database)\n"
            )
        # What is still of use stays: the mail not yet sent and the live token.
        assert await storage.mail.pending() == queued + 1
        assert (await storage.mail.count_attempt("live-token")) is not None
        for session_id in [*expired, *revoked]:
            assert await storage.sessions.get(session_id, user_id=user.id) is None
        assert await storage.sessions.get("live", user_id=user.id) is not None
        kept = await storage.attempts.count("current", now=now, window=timedelta(hours=1))
        assert kept.count == 2
        trail = await storage.audit.of_user(user.id, limit=100)
        assert "staged_still_kept" in {entry.event for entry in trail}
        assert "staged_too_old" not in {entry.event for entry in trail}
    finally:
        await storage.close()
    assert (await api.me(user.tokens)).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "command", "store"),
    [
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}, "promote", "database"),
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}, "migrate", "database"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "deactivate", "session_store"),
    ],
)
async def test_an_unreachable_store_is_one_line(
    overrides: dict[str, str],
    command: str,
    store: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path}/auth.db"
    _use_settings(monkeypatch, make_settings(database), tmp_path)
    assert (await run("migrate")).exit_code == 0
    user = "user@example.com"
    created = await run("create-user", user, "user", "--password-stdin", stdin=f"{NEW_PASSWORD}\n")
    assert created.exit_code == 0, created.output
    settings = make_settings(database, STORE_DEADLINE_SECONDS=0.5, **overrides)
    _use_settings(monkeypatch, settings, tmp_path)
    args = [command] if command == "migrate" else [command, user]
    assert _refused(await run(*args), code=3) == f"error: store unavailable ({store})\n"


def test_check_lists_unsafe_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _use_settings(monkeypatch, make_settings(f"sqlite:///{tmp_path}/auth.db"), tmp_path)
    problem = "- SECURE_COOKIES is false: cookies would travel over plain HTTP\n"
    monkeypatch.setenv("SECURE_COOKIES", "false")
    unsafe = CliRunner().invoke(cli, ["check"])
    assert unsafe.exit_code == 1
    assert problem in unsafe.stdout
    monkeypatch.setenv("SECURE_COOKIES", "true")
    assert problem not in CliRunner().invoke(cli, ["check"]).stdout
