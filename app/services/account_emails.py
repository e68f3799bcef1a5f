"""The account's life by email: verifying the address, recovering a forgotten password,
changing the address (confirmed from the new one, undoable from the old one), and the notices
that tell an owner what happened to their account.

A request that names an address (verify, forgot) answers the same whether or not an account
has it: it only queues a request in the outbox, and the delivery worker, later, finds the
account and writes the token and its mail in one transaction, or drops the request.
"""

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote
from uuid import uuid4

from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import EmailTaken, EmailTokenInvalid
from app.core.events import SecurityEvent, SecurityEvents
from app.core.passwords import PasswordHasher
from app.db.units import UnitOfWork
from app.domain.accounts import Account, AccountChanges
from app.domain.mail import EmailToken, Mail, TokenPurpose
from app.services.email_tokens import EmailTokens
from app.services.liveness import Liveness
from app.services.lockout import LoginLockout
from app.services.passwords import PasswordPolicy
from app.storage.mail import MailStore
from app.storage.protocols import SessionStore
from app.storage.users import UserStore

# A queued request to send a mail of this kind, when an account has the address.
REQUEST_PREFIX = "request:"
VERIFY_PATH = "/account/verify"
RESET_PATH = "/account/reset-password"
CONFIRM_EMAIL_PATH = "/account/confirm-email"
UNDO_EMAIL_PATH = "/account/undo-email-change"
# The notice to an address that someone tried to register again, when that must not be told.
REGISTRATION_ATTEMPT = "registration_attempt"
NEW_DEVICE = "new_device"


@dataclass(frozen=True, slots=True)
class MailPolicy:
    """What the mails say and link to, and how long their tokens last."""

    service: str
    public_url: str
    verify_lifetime: timedelta
    reset_lifetime: timedelta
    change_lifetime: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> "MailPolicy":
        return cls(
            service=settings.PROJECT_NAME,
            public_url=settings.public_url,
            verify_lifetime=timedelta(minutes=settings.VERIFY_TOKEN_MINUTES),
            reset_lifetime=timedelta(minutes=settings.RESET_TOKEN_MINUTES),
            change_lifetime=timedelta(minutes=settings.EMAIL_CHANGE_TOKEN_MINUTES),
        )

    def link(self, path: str, token: str | None = None) -> str:
        """A link to one of the service's pages, built from PUBLIC_URL, never from a request."""
        return f"{self.public_url}{path}" + (f"?token={quote(token)}" if token else "")


def new_mail_id() -> str:
    return uuid4().hex


def _minutes(lifetime: timedelta) -> int:
    return int(lifetime.total_seconds() // 60)


class AccountEmails:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        mail: MailStore,
        tokens: EmailTokens,
        liveness: Liveness,
        hasher: PasswordHasher,
        passwords: PasswordPolicy,
        lockout: LoginLockout,
        events: SecurityEvents,
        clock: Clock,
        policy: MailPolicy,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._mail = mail
        self._tokens = tokens
        self._liveness = liveness
        self._hasher = hasher
        self._passwords = passwords
        self._lockout = lockout
        self._events = events
        self._clock = clock
        self._policy = policy

    def _context(self, account: Account, **more: object) -> dict[str, object]:
        return {
            "service": self._policy.service,
            "public_url": self._policy.public_url,
            "username": account.username,
            "email": account.email,
            **more,
        }

    # --- requests that name an address: the same answer and work whoever has it -------------

    async def request(self, kind: TokenPurpose | str, address: str) -> None:
        """Queue a mail of `kind` to `address`, to be written if an account has it."""
        await self._mail.enqueue(
            Mail(id=new_mail_id(), kind=f"{REQUEST_PREFIX}{kind}", address=address),
            now=self._clock.now(),
        )

    async def prepare(self, request: Mail) -> Mail | None:
        """The mail a queued request becomes, its token stored with it; None to drop it."""
        kind = request.kind.removeprefix(REQUEST_PREFIX)
        found = await self._users.credentials(request.address)
        account = found.account if found else None
        if account is None or not account.is_active:
            return None
        now = self._clock.now()
        if kind == REGISTRATION_ATTEMPT:
            mail = self._notice_mail(
                kind, account, link=self._policy.link("/account/sign-in"), mail_id=request.id
            )
            await self._mail.prepare(request, mail, None, now=now)
            return mail
        purpose = TokenPurpose(kind)
        if purpose is TokenPurpose.VERIFY_EMAIL and account.is_verified:
            return None
        lifetime, path = (
            (self._policy.verify_lifetime, VERIFY_PATH)
            if purpose is TokenPurpose.VERIFY_EMAIL
            else (self._policy.reset_lifetime, RESET_PATH)
        )
        issued = EmailTokens.new(
            user_id=account.id, purpose=purpose, email=account.email, now=now, lifetime=lifetime
        )
        mail = Mail(
            id=request.id,
            kind=purpose.value,
            address=account.email,
            payload=self._context(
                account,
                link=self._policy.link(path, issued.text),
                token=issued.text,
                expires_minutes=_minutes(lifetime),
            ),
        )
        await self._mail.prepare(request, mail, issued.stored, now=now)
        return mail

    # --- what the tokens let their holder do -------------------------------------------------

    async def verify(self, token: str) -> Account:
        """Mark the address verified."""
        now = self._clock.now()
        checked = await self._tokens.check(token, TokenPurpose.VERIFY_EMAIL, now=now)
        # Good only for the address it was sent to.
        account = await self._usable_account(checked, email=checked.email)
        await self._tokens.spend(checked, now=now)
        verified = await self._users.update(account.id, AccountChanges(is_verified=True), now=now)
        self._liveness.forget_user(account.id)
        self._events.emit(SecurityEvent.EMAIL_VERIFIED, user_id=account.id)
        return verified

    async def reset_password(self, token: str, password: str) -> None:
        """Set a new password: every session ends and the sign-in lockout is lifted."""
        now = self._clock.now()
        checked = await self._tokens.check(token, TokenPurpose.RESET_PASSWORD, now=now)
        account = await self._usable_account(checked, email=checked.email)
        await self._passwords.check(password, email=account.email, username=account.username)
        hashed = await self._hasher.hash(password)
        await self._tokens.spend(checked, now=now)
        # The link proves the address: it is verified too.
        await self._users.update(
            account.id, AccountChanges(hashed_password=hashed, is_verified=True), now=now
        )
        # After the new password is stored: a sign-in with the old one that stores its session
        # after this finds the password changed when it looks again (AuthService.login).
        revoked = await self._sessions.revoke_all(account.id, now=now)
        self._liveness.forget_user(account.id)
        await self._lockout.forget(account.email)
        self._events.emit(
            SecurityEvent.PASSWORD_RESET, user_id=account.id, sessions_revoked=revoked
        )
        await self.password_changed(account, reset=True)

    async def request_email_change(self, account: Account, *, new_email: str) -> None:
        """Send a confirmation link to the new address; the account keeps the old one until
        it is followed. The caller has proved it is the owner (the current password).

        An address another account holds gets nothing, and the caller the same answer: asking
        must not tell whose address is known."""
        now = self._clock.now()
        try:
            await self._users.ensure_available(
                email=new_email, username=None, except_id=account.id, now=now
            )
        except EmailTaken:
            return
        lifetime = self._policy.change_lifetime
        issued = EmailTokens.new(
            user_id=account.id,
            purpose=TokenPurpose.CHANGE_EMAIL,
            email=new_email,
            now=now,
            lifetime=lifetime,
        )
        mail = Mail(
            id=new_mail_id(),
            kind="confirm_email_change",
            address=new_email,
            payload=self._context(
                account,
                email=new_email,
                link=self._policy.link(CONFIRM_EMAIL_PATH, issued.text),
                token=issued.text,
                expires_minutes=_minutes(lifetime),
            ),
        )
        await self._mail.issue(issued.stored, mail, now=now)
        self._events.emit(SecurityEvent.EMAIL_CHANGE_REQUESTED, user_id=account.id)

    async def confirm_email_change(self, token: str) -> Account:
        """Make the new address the account's; the old one gets a notice with a way back."""
        now = self._clock.now()
        checked = await self._tokens.check(token, TokenPurpose.CHANGE_EMAIL, now=now)
        account = await self._usable_account(checked)
        await self._tokens.spend(checked, now=now)
        lifetime = self._policy.change_lifetime
        undo = EmailTokens.new(
            user_id=account.id,
            purpose=TokenPurpose.UNDO_EMAIL_CHANGE,
            email=account.email,
            now=now,
            lifetime=lifetime,
        )
        notice = Mail(
            id=new_mail_id(),
            kind="email_changed",
            address=account.email,
            payload=self._context(
                account,
                old_email=account.email,
                new_email=checked.email,
                link=self._policy.link(UNDO_EMAIL_PATH, undo.text),
                token=undo.text,
                expires_minutes=_minutes(lifetime),
            ),
        )
        change = AccountChanges(email=checked.email, is_verified=True)
        changed = await self._mail.issue(
            undo.stored, notice, now=now, after=self._users.update_unit(account.id, change, now=now)
        )
        assert changed is not None
        self._liveness.forget_user(account.id)
        self._events.emit(SecurityEvent.EMAIL_CHANGED, user_id=account.id)
        return changed

    async def undo_email_change(self, token: str) -> Account:
        """Put the old address back and end every session: the change may have been a thief's."""
        now = self._clock.now()
        checked = await self._tokens.check(token, TokenPurpose.UNDO_EMAIL_CHANGE, now=now)
        account = await self._usable_account(checked)
        await self._tokens.spend(checked, now=now)
        try:
            restored = await self._users.update(
                account.id, AccountChanges(email=checked.email, is_verified=True), now=now
            )
        except EmailTaken as taken:
            raise EmailTokenInvalid("The old address belongs to another account now.") from taken
        # Whatever came after the change being undone goes with it: a pending change and the
        # undo links of later changes, which a thief would hold.
        await self._mail.void(
            account.id,
            (TokenPurpose.CHANGE_EMAIL, TokenPurpose.UNDO_EMAIL_CHANGE),
            now=now,
            issued_after=checked.created_at,
        )
        await self._sessions.revoke_all(account.id, now=now)
        self._liveness.forget_user(account.id)
        self._events.emit(SecurityEvent.EMAIL_CHANGE_UNDONE, user_id=account.id)
        return restored

    async def _usable_account(self, token: EmailToken, *, email: str | None = None) -> Account:
        """The active account a token acts on (whose address is still `email`, when given)."""
        account = await self._users.get(token.user_id)
        if account is None or not account.is_active or email not in (None, account.email):
            raise EmailTokenInvalid
        return account

    # --- notices ---------------------------------------------------------------------------

    async def password_changed(self, account: Account, *, reset: bool) -> None:
        """After a new password is stored, however: the links mailed before it stop working
        (a reset link, a pending email change: either may be a thief's), and the owner is
        told."""
        await self._mail.void(
            account.id,
            (TokenPurpose.RESET_PASSWORD, TokenPurpose.CHANGE_EMAIL),
            now=self._clock.now(),
        )
        await self.notify("password_changed", account, reset=reset)

    def _notice_mail(self, kind: str, account: Account, *, mail_id: str, **more: object) -> Mail:
        return Mail(
            id=mail_id, kind=kind, address=account.email, payload=self._context(account, **more)
        )

    async def notify(self, kind: str, account: Account, **more: object) -> None:
        """Tell the owner that something happened to their account."""
        links = {
            "password_changed": self._policy.link("/account/forgot-password"),
            NEW_DEVICE: self._policy.link("/account/devices"),
        }
        mail = self._notice_mail(
            kind, account, mail_id=new_mail_id(), link=links.get(kind, ""), **more
        )
        await self._mail.enqueue(mail, now=self._clock.now())

    async def erase(self, account: Account, *, after: UnitOfWork[None]) -> None:
        """After `after` (the account's removal), forget every mail still queued to the
        account's address and queue one last notice to it, in one transaction."""
        farewell = self._notice_mail(
            "account_deleted", account, mail_id=new_mail_id(), link=self._policy.link("/")
        )
        await self._mail.forget_address(
            account.email, now=self._clock.now(), farewell=farewell, after=after
        )

    async def send_verification(self, account: Account) -> None:
        """A verification link for an account the caller already knows (a new one, or one an
        admin asks for); a request for an address goes through `request`."""
        await self.request(TokenPurpose.VERIFY_EMAIL, account.email)


def is_request(mail: Mail) -> bool:
    """Whether the mail is still a request, to be turned into a mail by `prepare`."""
    return mail.kind.startswith(REQUEST_PREFIX)
