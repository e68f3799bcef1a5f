"""Registration, sign-in, refresh-token rotation and sign-out."""

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.core.clock import Clock
from app.core.config import Settings
from app.core.csrf import csrf_token_for, csrf_token_valid
from app.core.devices import MAX_USER_AGENT_LENGTH, describe_device
from app.core.errors import (
    CsrfFailed,
    EmailNotVerified,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    RateLimited,
    RefreshTokenReused,
    SessionRevoked,
    UserNotFound,
)
from app.core.events import SecurityEvent, SecurityEvents
from app.core.passwords import PasswordHasher
from app.core.tokens import TokenCodec, new_token_ids
from app.domain.accounts import Account, NewAccount
from app.domain.principals import ClientInfo, CsrfProof, Principal
from app.domain.sessions import RefreshGrant, RotationOutcome, SessionRecord
from app.schemas.user import UserCreate, normalize_email
from app.services.account_emails import NEW_DEVICE, REGISTRATION_ATTEMPT, AccountEmails
from app.services.liveness import Liveness
from app.services.lockout import LoginLockout
from app.services.mail_requests import MailRequests
from app.services.passwords import PasswordPolicy
from app.services.rate_limit import LOGIN_ACCOUNT, RateLimiter
from app.services.session_policy import SessionPolicy
from app.storage.protocols import SessionStore
from app.storage.users import UserStore

# A sign-in this soon after registering, with no other session, is the owner's first.
FIRST_SIGN_IN_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    session_id: str
    csrf_token: str
    issued_at: datetime
    access_expires_at: datetime
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionTokens:
    """Issues a session's token pair: lifetimes, the refresh grace, and the CSRF key."""

    codec: TokenCodec
    access_lifetime: timedelta
    policy: SessionPolicy
    reuse_grace: timedelta
    csrf_key: str

    @classmethod
    def from_settings(cls, settings: Settings, codec: TokenCodec) -> "SessionTokens":
        return cls(
            codec=codec,
            access_lifetime=timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES),
            policy=SessionPolicy.from_settings(settings),
            reuse_grace=timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS),
            csrf_key=settings.signing_key,
        )

    def pair(
        self,
        *,
        user_id: int,
        session_id: str,
        refresh: RefreshGrant,
        access_token_id: str,
        now: datetime,
    ) -> TokenPair:
        """A new access token and the refresh token the session accepts next."""
        access_expires = min(now + self.access_lifetime, refresh.expires_at)
        access_token = self.codec.encode(
            user_id=user_id,
            session_id=session_id,
            token_type="access",
            token_id=access_token_id,
            issued_at=now,
            expires_at=access_expires,
        )
        refresh_token = self.codec.encode(
            user_id=user_id,
            session_id=session_id,
            token_type="refresh",
            token_id=refresh.jti,
            issued_at=refresh.issued_at,
            expires_at=refresh.expires_at,
        )
        return TokenPair(
            access_token=access_token,
            refresh_token=refresh_token,
            session_id=session_id,
            csrf_token=csrf_token_for(session_id, self.csrf_key),
            issued_at=now,
            access_expires_at=access_expires,
            refresh_expires_at=refresh.expires_at,
        )


def _id(account: Account | None) -> int | None:
    return account.id if account else None


class AuthService:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        liveness: Liveness,
        hasher: PasswordHasher,
        passwords: PasswordPolicy,
        tokens: SessionTokens,
        limiter: RateLimiter,
        lockout: LoginLockout,
        emails: AccountEmails,
        mail_requests: MailRequests,
        events: SecurityEvents,
        clock: Clock,
        require_verified: bool,
        notify_new_device: bool,
    ) -> None:
        self._emails = emails
        self._mail_requests = mail_requests
        self._require_verified = require_verified
        self._notify_new_device = notify_new_device
        self._users = users
        self._sessions = sessions
        self._liveness = liveness
        self._hasher = hasher
        self._passwords = passwords
        self._tokens = tokens
        self._limiter = limiter
        self._lockout = lockout
        self._events = events
        self._clock = clock

    async def register(self, data: UserCreate) -> Account | None:
        """Create an ordinary, active user (privileges are never taken from the request) and
        send a link to verify the address.

        When verified addresses are required, an address that has an account gets a notice
        instead, and the caller the same answer as for a new one (None here): registering
        must not tell whose address is known. Either way a mail goes to the address, so each
        registration spends the address's mail budget first, known or not.
        """
        await self._passwords.check(data.password, email=data.email, username=data.username)
        await self._mail_requests.spend(data.email)
        hashed_password = await self._hasher.hash(data.password)
        try:
            account = await self._users.create(
                NewAccount(
                    email=data.email,
                    username=data.username,
                    hashed_password=hashed_password,
                    is_admin=False,
                    created_at=self._clock.now(),
                )
            )
        except EmailTaken:
            if not self._require_verified:
                raise
            # A taken username is told as it would be with a new address (whichever unique
            # key the database happens to check first), so that it cannot tell the two apart.
            await self._users.ensure_available(
                email=None, username=data.username, now=self._clock.now()
            )
            await self._emails.request(REGISTRATION_ATTEMPT, data.email)
            return None
        self._events.emit(SecurityEvent.REGISTERED, user_id=account.id)
        await self._emails.send_verification(account)
        return account

    async def _admit(
        self, *, email: str, account: Account | None, client: ClientInfo
    ) -> tuple[int, bool]:
        """Spend the per-account budget and count the attempt against the lockout, before any
        password is checked; return the attempt's number and whether the exemption let it in.

        Both are keyed by the submitted email, existing or not, so they reveal nothing. A
        client whose address holds one of the user's live sessions is exempt from both: an
        attacker can keep strangers out, but not the owner on their usual network. An attempt
        let in only by the exemption must not reset the attacker's count when it succeeds.
        """
        try:
            await self._limiter.hit(LOGIN_ACCOUNT, email)
            return await self._lockout.admit(email, now=self._clock.now()), False
        except RateLimited as refusal:
            if await self._has_session_from(account, client):
                return 0, True
            self._events.emit(
                SecurityEvent.RATE_LIMITED, policy=refusal.policy, user_id=_id(account)
            )
            raise

    async def _has_session_from(self, account: Account | None, client: ClientInfo) -> bool:
        if account is None or client.ip_address is None:
            return False
        live = await self._sessions.list_live(account.id, self._clock.now())
        return any(session.ip_address == client.ip_address for session in live)

    async def login(self, *, email: str, password: str, client: ClientInfo) -> TokenPair:
        """Check credentials and open a new session.

        An unknown email, a wrong password and a deactivated account fail identically and take
        the same time, so that the answer does not reveal which accounts exist. No database
        connection is held while the password is checked: the lookup is a unit of its own.
        """
        email = normalize_email(email)
        found = await self._users.credentials(email)
        account = found.account if found else None
        attempt, exempted = await self._admit(email=email, account=account, client=client)
        stored_hash = found.hashed_password if found else None
        valid, new_hash = await self._hasher.verify(password, stored_hash)
        if found is None or not valid or not found.account.is_active:
            self._events.emit(SecurityEvent.LOGIN_FAILED, user_id=_id(account))
            if self._lockout.locks_after_failure(attempt):
                self._events.emit(SecurityEvent.ACCOUNT_LOCKED, user_id=_id(account))
            raise InvalidCredentials
        account = found.account
        if not exempted:
            await self._lockout.forget(email)
        # Told only to whoever knows the password: it reveals nothing to a guesser.
        if self._require_verified and not account.is_verified:
            raise EmailNotVerified
        if new_hash is not None:
            await self._users.upgrade_password_hash(
                account.id, old=found.hashed_password, new=new_hash
            )
        now = self._clock.now()
        user_agent = (client.user_agent or "")[:MAX_USER_AGENT_LENGTH] or None
        device = describe_device(user_agent or "")
        session_id, refresh_token_id, access_token_id = new_token_ids(3)
        policy = self._tokens.policy
        absolute_end = policy.absolute_end(now)
        session = SessionRecord(
            id=session_id,
            user_id=account.id,
            created_at=now,
            last_seen_at=now,
            expires_at=policy.expiry(now, absolute_end=absolute_end),
            ip_address=client.ip_address,
            user_agent=user_agent,
            browser=device.browser,
            os=device.os,
            device_type=device.device_type,
            refresh_jti=refresh_token_id,
            refresh_issued_at=now,
            absolute_expires_at=absolute_end,
            idle_expires_at=policy.idle_end(now),
        )
        new_device = self._notify_new_device and await self._is_new_device(account, session)
        try:
            await self._sessions.create(session)
        except UserNotFound:
            # A store tied to the users table refuses a session of an account deleted since.
            self._events.emit(SecurityEvent.LOGIN_FAILED, user_id=account.id)
            raise InvalidCredentials from None
        # The account is read again once the session is stored. Deleting an account, changing
        # its password and deactivating it each store the change first and revoke the
        # account's sessions after. A session stored before that revocation is ended by it;
        # one stored after it was stored after the change, so this read, which follows,
        # sees the change and ends the session here. Either way none outlives the change.
        if not await self._still_admits(account.id, password, found.hashed_password, new_hash):
            await self._sessions.revoke(session.id, user_id=account.id, now=now)
            self._events.emit(SecurityEvent.LOGIN_FAILED, user_id=account.id)
            raise InvalidCredentials
        if new_device:
            await self._emails.notify(
                NEW_DEVICE,
                account,
                device=f"{session.browser} on {session.os}",
                ip_address=session.ip_address or "an unknown address",
                when=now.strftime("%Y-%m-%d %H:%M"),
            )
        self._events.emit(SecurityEvent.LOGIN_SUCCEEDED, user_id=account.id, session_id=session.id)
        return self._tokens.pair(
            user_id=account.id,
            session_id=session.id,
            refresh=session.refresh_grant(),
            access_token_id=access_token_id,
            now=now,
        )

    async def _still_admits(
        self, user_id: int, password: str, checked_hash: str, upgraded_hash: str | None
    ) -> bool:
        """Whether the account, read again, still exists, is active and takes the password
        that was checked against `checked_hash` (and upgraded to `upgraded_hash`, if so)."""
        current = await self._users.credentials_of(user_id)
        if current is None or not current.account.is_active:
            return False
        if current.hashed_password in (checked_hash, upgraded_hash):
            return True
        # Changed meanwhile: by a password change, or by another sign-in's upgrade of the same
        # password to the current hashing parameters, which must not fail this one.
        valid, _ = await self._hasher.verify(password, current.hashed_password)
        return valid

    async def _is_new_device(self, account: Account, new: SessionRecord) -> bool:
        """Whether no live session of the account is from the same browser and system. The
        first sign-in of a new account is not news to its owner."""
        live = await self._sessions.list_live(account.id, new.created_at)
        if not live and new.created_at - account.created_at < FIRST_SIGN_IN_WINDOW:
            return False
        return all((s.browser, s.os) != (new.browser, new.os) for s in live)

    async def refresh(self, *, refresh_token: str, csrf: CsrfProof | None = None) -> TokenPair:
        """Rotate a refresh token; a replayed one revokes its whole session.

        A refresh token that arrived in a cookie must come with the session's CSRF token
        (`csrf`).
        """
        now = self._clock.now()
        claims = self._tokens.codec.decode(refresh_token, expected_type="refresh", now=now)
        if csrf is not None and not csrf_token_valid(
            claims.session_id, self._tokens.csrf_key, header=csrf.header, cookie=csrf.cookie
        ):
            raise CsrfFailed
        # Everything that can fail comes before the rotation, which is the last thing stored:
        # a client that gets anything but the new pair keeps a refresh token that still works.
        account = await self._liveness.account(claims.user_id)
        if account is None or not account.is_active:
            self._events.emit(SecurityEvent.REFRESH_REJECTED, user_id=claims.user_id)
            raise SessionRevoked
        refresh_token_id, access_token_id = new_token_ids(2)
        policy = self._tokens.policy
        # The store checks that the session belongs to the token's user, and holds its
        # absolute end, by which it caps the expiry.
        rotation = await self._sessions.rotate(
            claims.session_id,
            user_id=claims.user_id,
            presented_jti=claims.token_id,
            new_jti=refresh_token_id,
            now=now,
            expires_at=policy.expiry(now, absolute_end=None),
            idle_expires_at=policy.idle_end(now),
            grace=self._tokens.reuse_grace,
        )
        if rotation.outcome is RotationOutcome.REUSED:
            self._liveness.forget_session(claims.session_id)
            self._events.emit(
                SecurityEvent.REFRESH_REUSE_DETECTED,
                user_id=claims.user_id,
                session_id=claims.session_id,
            )
            raise RefreshTokenReused
        if rotation.outcome is RotationOutcome.DEAD or rotation.current is None:
            self._events.emit(SecurityEvent.REFRESH_REJECTED, user_id=claims.user_id)
            raise SessionRevoked
        self._events.emit(
            SecurityEvent.REFRESHED, user_id=claims.user_id, outcome=rotation.outcome.value
        )
        return self._tokens.pair(
            user_id=claims.user_id,
            session_id=claims.session_id,
            refresh=rotation.current,
            access_token_id=access_token_id,
            now=now,
        )

    async def logout(self, principal: Principal, *, refresh_token: str | None) -> None:
        """End the caller's session, and the refresh token's session when it is another of
        theirs."""
        now = self._clock.now()
        session_ids = {principal.session_id}
        if refresh_token:
            # A bad refresh token must not keep the caller's own session alive.
            with contextlib.suppress(InvalidToken):
                claims = self._tokens.codec.decode(refresh_token, expected_type="refresh", now=now)
                if claims.user_id == principal.account.id:
                    session_ids.add(claims.session_id)
        for session_id in session_ids:
            if await self._sessions.revoke(session_id, user_id=principal.account.id, now=now):
                self._events.emit(
                    SecurityEvent.SESSION_REVOKED,
                    user_id=principal.account.id,
                    session_id=session_id,
                    reason="logout",
                )
            self._liveness.forget_session(session_id)
