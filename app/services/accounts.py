"""The services that manage accounts, wired once for both of their callers: the API (app.main)
and the operator's CLI (app.cli), so that a rule such as "a new password ends every session and
tells the owner" holds whichever way the change comes."""

from dataclasses import dataclass

from app.core.clock import Clock
from app.core.config import Settings
from app.core.events import SecurityEvents
from app.core.passwords import PasswordHasher
from app.services.account_emails import AccountEmails, MailPolicy
from app.services.audit_trail import AuditTrail
from app.services.email_tokens import EmailTokens
from app.services.liveness import Liveness
from app.services.lockout import LoginLockout
from app.services.mail_requests import MailRequests
from app.services.passwords import PasswordPolicy
from app.services.rate_limit import RateLimiter
from app.services.sessions import SessionService
from app.services.users import UserService
from app.storage.factory import Storage


@dataclass(frozen=True, slots=True)
class AccountServices:
    liveness: Liveness
    lockout: LoginLockout
    emails: AccountEmails
    mail_requests: MailRequests
    users: UserService
    sessions: SessionService

    @classmethod
    def build(
        cls,
        settings: Settings,
        storage: Storage,
        *,
        hasher: PasswordHasher,
        passwords: PasswordPolicy,
        limiter: RateLimiter,
        events: SecurityEvents,
        trail: AuditTrail,
        clock: Clock,
    ) -> "AccountServices":
        liveness = Liveness(
            users=storage.users,
            sessions=storage.sessions,
            clock=clock,
            seconds=settings.SESSION_CACHE_SECONDS,
        )
        lockout = LoginLockout(
            storage.attempts,
            threshold=settings.LOGIN_LOCKOUT_THRESHOLD,
            seconds=settings.LOGIN_LOCKOUT_SECONDS,
            secret=settings.signing_key,
        )
        emails = AccountEmails(
            users=storage.users,
            sessions=storage.sessions,
            mail=storage.mail,
            tokens=EmailTokens(storage.mail, max_attempts=settings.EMAIL_TOKEN_MAX_ATTEMPTS),
            liveness=liveness,
            hasher=hasher,
            passwords=passwords,
            lockout=lockout,
            events=events,
            clock=clock,
            policy=MailPolicy.from_settings(settings),
        )
        mail_requests = MailRequests(limiter=limiter, emails=emails, key=settings.signing_key)
        return cls(
            liveness=liveness,
            lockout=lockout,
            emails=emails,
            mail_requests=mail_requests,
            users=UserService(
                users=storage.users,
                sessions=storage.sessions,
                liveness=liveness,
                hasher=hasher,
                passwords=passwords,
                emails=emails,
                mail_requests=mail_requests,
                events=events,
                trail=trail,
                clock=clock,
            ),
            sessions=SessionService(
                sessions=storage.sessions, liveness=liveness, events=events, clock=clock
            ),
        )
