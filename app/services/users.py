"""Profile changes, the admin's listing and editing of users, and the operator's (the CLI's)."""

from collections.abc import Mapping
from dataclasses import replace

from app.core.clock import Clock
from app.core.errors import AlreadyVerified, CurrentPasswordInvalid, LastAdmin, UserNotFound
from app.core.events import SecurityEvent, SecurityEvents
from app.core.passwords import PasswordHasher
from app.domain.accounts import (
    Account,
    AccountChanges,
    AccountExport,
    NewAccount,
    UserFilter,
)
from app.domain.principals import Principal
from app.schemas.user import AdminUserUpdate, ProfileUpdate, UserCreate, normalize_email
from app.services.account_emails import AccountEmails
from app.services.audit_trail import AuditTrail
from app.services.liveness import Liveness
from app.services.mail_requests import MailRequests
from app.services.passwords import PasswordPolicy
from app.storage.protocols import SessionStore
from app.storage.users import UserStore

# Marks an operator's change in the security events: it is made on the service's host through
# the CLI, with no admin account behind it, and an audit must still tell it from an admin's.
OPERATOR: Mapping[str, object] = {"admin_id": None, "via": "cli"}
# The security events a data export carries: the latest, as many as a person would read.
EXPORTED_EVENTS = 1000


class UserService:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        liveness: Liveness,
        hasher: PasswordHasher,
        passwords: PasswordPolicy,
        emails: AccountEmails,
        mail_requests: MailRequests,
        events: SecurityEvents,
        trail: AuditTrail,
        clock: Clock,
    ) -> None:
        self._trail = trail
        self._users = users
        self._emails = emails
        self._mail_requests = mail_requests
        self._sessions = sessions
        self._liveness = liveness
        self._hasher = hasher
        self._passwords = passwords
        self._events = events
        self._clock = clock

    async def _new_password_hash(
        self, password: str | None, *, email: str, username: str
    ) -> str | None:
        if password is None:
            return None
        await self._passwords.check(password, email=email, username=username)
        return await self._hasher.hash(password)

    async def update_profile(self, principal: Principal, changes: ProfileUpdate) -> Account:
        """Change the caller's own username or password, and ask for an email change.

        Email and password changes need the current password. A password change ends every
        other session of the user and tells the owner by mail. A new email is not the
        account's until confirmed from that address: the account returned still has the old
        one, and a link is on its way to the new one.
        """
        found = await self._users.credentials_of(principal.account.id)
        if found is None:
            raise UserNotFound
        current = found.account
        new_email = changes.email if changes.email not in (None, current.email) else None
        if changes.password is not None or new_email is not None:
            valid, _ = await self._hasher.verify(
                changes.current_password or "", found.hashed_password
            )
            if not valid:
                raise CurrentPasswordInvalid
        username = changes.username or current.username
        # Whether another account has the new address is not told (request_email_change).
        await self._users.ensure_available(
            email=None, username=changes.username, except_id=current.id, now=self._clock.now()
        )
        if new_email is not None:
            await self._mail_requests.spend(new_email)
        hashed_password = await self._new_password_hash(
            changes.password, email=current.email, username=username
        )
        if hashed_password is not None:
            revoked = await self._end_sessions(current.id, principal.session_id)
        account = await self._users.update(
            current.id,
            AccountChanges(username=username, hashed_password=hashed_password),
            now=self._clock.now(),
        )
        self._liveness.forget_user(account.id)
        if hashed_password is not None:
            await self._end_sessions(current.id, principal.session_id)
            self._events.emit(
                SecurityEvent.PASSWORD_CHANGED, user_id=current.id, sessions_revoked=revoked
            )
            await self._emails.password_changed(account, reset=False)
        if new_email is not None:
            await self._emails.request_email_change(account, new_email=new_email)
        return account

    async def _end_sessions(self, user_id: int, keep_session_id: str | None) -> int:
        """End the user's sessions (but `keep_session_id`) around a change of password or
        access: before it, so that a change the store then fails to make leaves no thief's
        session behind, and again after it, for a sign-in that read the account before the
        change and stored its session after the first sweep."""
        return await self._sessions.revoke_all(
            user_id, now=self._clock.now(), keep_session_id=keep_session_id
        )

    async def delete_account(self, principal: Principal, password: str) -> None:
        """Delete the caller's account, on their password: every session ends, the account's
        row and everything keyed to it go, and a last notice goes to the address. The security
        events keep the account's id, never its address."""
        found = await self._users.credentials_of(principal.account.id)
        if found is None:
            raise UserNotFound
        account = found.account
        valid, _ = await self._hasher.verify(password, found.hashed_password)
        if not valid:
            raise CurrentPasswordInvalid
        if (
            account.is_admin
            and account.is_active
            and await self._users.count_active_admins(except_id=account.id) == 0
        ):
            raise LastAdmin
        revoked = await self._end_sessions(account.id, None)
        await self._emails.erase(account, after=self._users.delete_unit(account.id))
        self._liveness.forget_user(account.id)
        # Again once the account is gone: a sign-in that read it before, and stored its session
        # after the first sweep, finds the account gone when it looks again (AuthService.login).
        await self._end_sessions(account.id, None)
        self._events.emit(
            SecurityEvent.ACCOUNT_DELETED, user_id=account.id, sessions_revoked=revoked
        )

    async def export(self, principal: Principal) -> AccountExport:
        """What the service holds about the caller, for them to keep."""
        now = self._clock.now()
        account = await self._users.get(principal.account.id)
        if account is None:
            raise UserNotFound
        return AccountExport(
            exported_at=now,
            account=account,
            sessions=await self._sessions.list_live(account.id, now),
            events=await self._trail.history(account.id, limit=EXPORTED_EVENTS),
        )

    async def get_user(self, user_id: int) -> Account:
        """A user, for an admin."""
        account = await self._users.get(user_id)
        if account is None:
            raise UserNotFound
        return account

    async def list_users(
        self, where: UserFilter, *, limit: int, offset: int
    ) -> tuple[list[Account], int]:
        """A page of users for an admin."""
        return await self._users.page(where, limit=limit, offset=offset)

    async def admin_update_user(
        self, actor: Principal, user_id: int, changes: AdminUserUpdate
    ) -> Account:
        """An admin's change to any user.

        Deactivation and password resets end all the user's sessions. No change may leave the
        service without an active admin.
        """
        return await self._change_user(user_id, changes, actor={"admin_id": actor.account.id})

    async def operator_update_user(self, user_id: int, changes: AdminUserUpdate) -> Account:
        """An operator's change to any user, under the rules of an admin's (admin_update_user)."""
        return await self._change_user(user_id, changes, actor=OPERATOR)

    async def _change_user(
        self, user_id: int, changes: AdminUserUpdate, *, actor: Mapping[str, object]
    ) -> Account:
        current = await self._users.get(user_id)
        if current is None:
            raise UserNotFound
        moves_email = changes.email is not None and changes.email != current.email
        # A new address is unproven until its owner follows a link, unless the admin says
        # otherwise in the same change.
        verified = changes.is_verified
        if moves_email and verified is None:
            verified = False
        change = AccountChanges(
            email=changes.email,
            username=changes.username,
            is_active=changes.is_active,
            is_admin=changes.is_admin,
            is_verified=verified,
        )
        # The plain case is refused before anything changes; the store refuses the rest, such
        # as two admins demoting each other at once.
        if (
            current.is_admin
            and current.is_active
            and change.removes_admin_rights()
            and await self._users.count_active_admins(except_id=current.id) == 0
        ):
            raise LastAdmin
        email = changes.email or current.email
        username = changes.username or current.username
        await self._users.ensure_available(
            email=changes.email,
            username=changes.username,
            except_id=current.id,
            now=self._clock.now(),
        )
        hashed_password = await self._new_password_hash(
            changes.password, email=email, username=username
        )
        ends_sessions = (current.is_active and changes.is_active is False) or (
            hashed_password is not None
        )
        if ends_sessions:
            # Should the store then refuse the change, the revoked sessions stay revoked: their
            # owner signs in again.
            await self._end_sessions(current.id, None)
        account = await self._users.update(
            current.id, replace(change, hashed_password=hashed_password), now=self._clock.now()
        )
        self._liveness.forget_user(account.id)
        if ends_sessions:
            await self._end_sessions(current.id, None)
        self._events.emit(
            SecurityEvent.ADMIN_CHANGED_USER,
            user_id=account.id,
            **actor,
            fields=sorted(changes.model_fields_set),
        )
        if hashed_password is not None:
            await self._emails.password_changed(account, reset=False)
        if moves_email:
            await self._emails.notify(
                "email_replaced", current, old_email=current.email, new_email=account.email
            )
        return account

    async def send_verification(self, user_id: int) -> None:
        """An admin's request to mail a user a new verification link (voiding older ones)."""
        account = await self.get_user(user_id)
        if account.is_verified:
            raise AlreadyVerified
        await self._emails.send_verification(account)

    async def user_by_email(self, email: str) -> Account:
        """The account with this email (normalised as at sign-up), for an operator."""
        found = await self._users.credentials(normalize_email(email))
        if found is None:
            raise UserNotFound(f"No user has the email {email}.")
        return found.account

    async def create_user(self, data: UserCreate, *, is_admin: bool, is_verified: bool) -> Account:
        """An operator's new account: active, an admin when asked, its password under the
        policy; an address not known to be the user's is mailed a verification link."""
        await self._users.ensure_available(
            email=data.email, username=data.username, now=self._clock.now()
        )
        await self._passwords.check(data.password, email=data.email, username=data.username)
        account = await self._users.create(
            NewAccount(
                email=data.email,
                username=data.username,
                hashed_password=await self._hasher.hash(data.password),
                is_admin=is_admin,
                created_at=self._clock.now(),
                is_verified=is_verified,
            )
        )
        self._events.emit(
            SecurityEvent.ADMIN_CHANGED_USER,
            user_id=account.id,
            **OPERATOR,
            fields=["email", "is_admin", "password", "username"],
            created=True,
            is_admin=is_admin,
        )
        if not is_verified:
            await self._emails.send_verification(account)
        return account
