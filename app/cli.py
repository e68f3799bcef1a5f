"""Operator commands, run on the service's host without the API: `python -m app.cli --help`.

The commands go through the API's services and stores, so the same rules hold (the password
policy, the last admin, sessions ending with a password change or a deactivation) and the same
security events are logged, to stderr, marked `via="cli"`.

Exit codes: 0 done; 1 refused by a rule (an unknown user or session, a taken email or
username, a rejected password, the last admin) or, for `check`, unsafe settings; 2 a usage
error; 3 a store (or the breached-password check) did not answer.
"""

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection

from app.core.clock import Clock, SystemClock
from app.core.config import Settings
from app.core.errors import DomainError, PasswordCheckUnavailable, StoreUnavailable
from app.core.events import AuditLog, EventFanout
from app.core.logging import configure_logging
from app.core.passwords import PasswordHasher
from app.db.migrate import ALEMBIC_INI
from app.domain.accounts import Account
from app.domain.sessions import SessionRecord
from app.schemas.user import AdminUserUpdate, Email, UserCreate, Username
from app.services.accounts import AccountServices
from app.services.audit_trail import AuditTrail
from app.services.bootstrap import prepare_from_settings
from app.services.passwords import PasswordPolicy
from app.services.rate_limit import RateLimiter
from app.services.sessions import SessionService
from app.services.users import UserService
from app.storage.factory import Storage, build_storage
from app.storage.guard import is_unavailable

T = TypeVar("T")

REFUSED = 1
USAGE = 2
UNAVAILABLE = 3

# Plain click output (no rich panels), and no pretty tracebacks: those print the locals of
# every frame, a password among them. Shell completion does not apply to `python -m`.
cli = typer.Typer(
    help="Operate the authentication service.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
sessions_cli = typer.Typer(
    help="A user's sessions: list them, end them.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
cli.add_typer(sessions_cli, name="sessions")

EmailArgument = Annotated[str, typer.Argument(metavar="EMAIL", help="The user's email.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of stdin instead of prompting for it.",
    ),
]


@dataclass(frozen=True, slots=True)
class Operator:
    """What the commands use: the API's stores and services, built from settings."""

    settings: Settings
    storage: Storage
    users: UserService
    sessions: SessionService
    clock: Clock


def _schema_is_current(connection: Connection) -> bool:
    heads = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_heads()
    return set(MigrationContext.configure(connection).get_current_heads()) == set(heads)


@asynccontextmanager
async def _operator(settings: Settings) -> AsyncIterator[Operator]:
    """The stores and services as app.main builds them, without what only requests use
    (tokens, metrics; the rate limiter is there for the services' wiring, and no operator
    command spends it); security events go to the audit log and, once the command is done,
    to the audit trail."""
    storage = build_storage(settings)
    hasher = PasswordHasher.from_settings(settings)
    passwords = PasswordPolicy.from_settings(settings)
    clock = SystemClock()
    trail = AuditTrail(storage.audit, clock)
    events = EventFanout(AuditLog(), trail)
    accounts = AccountServices.build(
        settings,
        storage,
        hasher=hasher,
        passwords=passwords,
        limiter=RateLimiter(settings, storage.rate_limits, storage.rate_limit_guard),
        events=events,
        trail=trail,
        clock=clock,
    )
    try:
        # The service migrates at start-up, but the CLI may run on a database no service has
        # started on yet (or one a newer version migrated): its tables are then not the ones
        # these services expect, and their errors would not say why.
        if not await storage.database.read(_schema_is_current):
            _fail(
                "the database schema does not match this version:"
                " run `python -m app.cli migrate` first",
                UNAVAILABLE,
            )
        yield Operator(
            settings=settings,
            storage=storage,
            users=accounts.users,
            sessions=accounts.sessions,
            clock=clock,
        )
        await trail.flush()
    finally:
        hasher.close()
        await passwords.aclose()
        await storage.close()


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _first_error(exc: ValidationError, name: str | None = None) -> str:
    error = exc.errors()[0]
    field = name or ".".join(str(part) for part in error["loc"])
    return f"{field}: {error['msg']}" if field else str(error["msg"])


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        _fail(f"invalid settings: {_first_error(exc)}", USAGE)
    # Without it structlog prints the security events to stdout, among the command's output.
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    return settings


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's work, turning refusals and outages into one line and an exit code."""
    try:
        return asyncio.run(work())
    except StoreUnavailable as exc:
        _fail(f"store unavailable ({exc.store})", UNAVAILABLE)
    except PasswordCheckUnavailable as exc:
        _fail(exc.detail, UNAVAILABLE)
    except DomainError as exc:
        _fail(exc.detail, REFUSED)
    except Exception as exc:
        # Migrations reach the database without the store guard, which would have converted
        # its outages.
        if is_unavailable(exc):
            _fail("store unavailable (database)", UNAVAILABLE)
        raise


def _operate(work: Callable[[Operator], Awaitable[T]]) -> T:
    """Run `work` with the services, on connections of its own that it closes."""
    settings = _settings()

    async def operate() -> T:
        async with _operator(settings) as operator:
            return await work(operator)

    return _run(operate)


def _validated(adapter: TypeAdapter[str], value: str, name: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        _fail(_first_error(exc, name), USAGE)


def _new_password(from_stdin: bool) -> str:
    """The password the operator gives: one line of stdin, or typed twice at a terminal."""
    if from_stdin:
        # The line break ends the password; any other white space is part of it.
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            _fail("no password on stdin", USAGE)
        return password
    if not sys.stdin.isatty():
        _fail("stdin is not a terminal: pipe the password in with --password-stdin", USAGE)
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


async def _ask_new_password(from_stdin: bool) -> str:
    # Off the event loop: the prompt waits for a person.
    return await asyncio.to_thread(_new_password, from_stdin)


def _change_user(email: str, changes: AdminUserUpdate) -> Account:
    async def change(operator: Operator) -> Account:
        account = await operator.users.user_by_email(email)
        return await operator.users.operator_update_user(account.id, changes)

    return _operate(change)


@cli.command()
def migrate() -> None:
    """Apply pending database migrations and create the default admin from settings."""
    settings = _settings()
    _run(lambda: prepare_from_settings(settings))
    typer.echo("database is up to date")


@cli.command()
def check() -> None:
    """List the settings that would make the service unsafe in production."""
    try:
        problems = Settings(ENVIRONMENT="development").security_problems()
    except ValidationError as exc:
        problems = [str(error["msg"]) for error in exc.errors()]
    for problem in problems:
        typer.echo(f"- {problem}")
    raise typer.Exit(code=REFUSED if problems else 0)


@cli.command("create-user")
def create_user(
    email: EmailArgument,
    username: Annotated[str, typer.Argument(metavar="USERNAME", help="The user's username.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    verified: Annotated[
        bool,
        typer.Option(
            "--verified", help="Take the email as verified instead of mailing a link to it."
        ),
    ] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an active user, under the password policy, and print its id. Unless --verified,
    the user is mailed a link to verify the address."""
    # Checked before the password is asked for, so that a typo costs no typing.
    email = _validated(TypeAdapter(Email), email, "EMAIL")
    username = _validated(TypeAdapter(Username), username, "USERNAME")

    async def create(operator: Operator) -> Account:
        password = await _ask_new_password(password_stdin)
        try:
            data = UserCreate(email=email, username=username, password=password)
        except ValidationError as exc:
            _fail(_first_error(exc), USAGE)
        return await operator.users.create_user(data, is_admin=admin, is_verified=verified)

    typer.echo(_operate(create).id)


@cli.command("set-password")
def set_password(email: EmailArgument, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password, under the password policy; every session of the user ends."""

    async def change(operator: Operator) -> Account:
        account = await operator.users.user_by_email(email)
        password = await _ask_new_password(password_stdin)
        try:
            changes = AdminUserUpdate(password=password)
        except ValidationError as exc:
            _fail(_first_error(exc), USAGE)
        return await operator.users.operator_update_user(account.id, changes)

    account = _operate(change)
    typer.echo(f"{account.email}: password set; every session ended")


@cli.command()
def activate(email: EmailArgument) -> None:
    """Let a user sign in again."""
    account = _change_user(email, AdminUserUpdate(is_active=True))
    typer.echo(f"{account.email}: active")


@cli.command()
def deactivate(email: EmailArgument) -> None:
    """Stop a user from signing in; every session of the user ends."""
    account = _change_user(email, AdminUserUpdate(is_active=False))
    typer.echo(f"{account.email}: inactive; every session ended")


@cli.command()
def promote(email: EmailArgument) -> None:
    """Make a user an admin."""
    account = _change_user(email, AdminUserUpdate(is_admin=True))
    typer.echo(f"{account.email}: admin")


@cli.command()
def demote(email: EmailArgument) -> None:
    """Take a user's admin rights away (never the last active admin's)."""
    account = _change_user(email, AdminUserUpdate(is_admin=False))
    typer.echo(f"{account.email}: no longer an admin")


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


@sessions_cli.command("list")
def list_sessions(email: EmailArgument) -> None:
    """Print a user's live sessions, newest first (times in UTC)."""

    async def sessions_of(operator: Operator) -> list[SessionRecord]:
        account = await operator.users.user_by_email(email)
        return await operator.sessions.list_for_user(account.id)

    sessions = _operate(sessions_of)
    rows = [("ID", "DEVICE", "IP", "CREATED", "LAST SEEN", "EXPIRES")]
    rows += [
        (
            session.id,
            f"{session.browser}, {session.os}, {session.device_type}",
            session.ip_address or "-",
            _time(session.created_at),
            _time(session.last_seen_at),
            _time(session.expires_at),
        )
        for session in sessions
    ]
    for line in _table(rows):
        typer.echo(line)


@sessions_cli.command("revoke")
def revoke_sessions(
    email: EmailArgument,
    session_id: Annotated[
        str | None, typer.Argument(metavar="SESSION_ID", help="The session to end.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="End every session of the user.")] = False,
) -> None:
    """End one session of a user (SESSION_ID) or all of them (--all)."""
    if (session_id is not None) == every:
        _fail("name one SESSION_ID, or --all", USAGE)

    async def revoke(operator: Operator) -> int:
        account = await operator.users.user_by_email(email)
        if session_id is None:
            return await operator.sessions.operator_revoke_all(account.id)
        await operator.sessions.operator_revoke_session(account.id, session_id)
        return 1

    revoked = _operate(revoke)
    typer.echo(f"{revoked} session{'' if revoked == 1 else 's'} ended")


@cli.command()
def purge() -> None:
    """Delete ended sessions and attempt counters from the SQL store (Redis expires its own),
    mails sent or given up over a week ago, email tokens past their expiry, and audit events
    older than AUDIT_RETENTION_DAYS."""

    async def purge_stores(operator: Operator) -> list[str]:
        sessions = await operator.sessions.purge()
        counters = await operator.storage.attempts.purge(operator.clock.now())
        mails, tokens = await operator.storage.mail.purge(operator.clock.now())
        retention = timedelta(days=operator.settings.AUDIT_RETENTION_DAYS)
        events = await operator.storage.audit.purge(operator.clock.now() - retention)
        store = "redis, which expires them itself" if operator.settings.REDIS_URL else "database"
        return [
            f"sessions: {sessions} removed ({store})",
            f"attempt counters: {counters} removed ({store})",
            f"mails: {mails} removed (database)",
            f"email tokens: {tokens} removed (database)",
            f"audit events: {events} removed (database)",
        ]

    for line in _operate(purge_stores):
        typer.echo(line)


if __name__ == "__main__":
    cli()
