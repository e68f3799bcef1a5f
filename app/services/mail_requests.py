"""Requests that name an address ("mail me a reset link"), from the API and the pages alike:
each spends the address's own budget, whoever asks, then only queues, so that the answer and
the work are the same whether or not an account has the address."""

from app.core.keys import keyed_digest
from app.domain.mail import TokenPurpose
from app.services.account_emails import AccountEmails
from app.services.rate_limit import MAIL_ADDRESS, RateLimiter


class MailRequests:
    def __init__(self, *, limiter: RateLimiter, emails: AccountEmails, key: str) -> None:
        self._limiter = limiter
        self._emails = emails
        self._key = key

    async def spend(self, email: str) -> None:
        """Spend one mail of the address's budget (RateLimited once it is spent)."""
        await self._limiter.hit(MAIL_ADDRESS, keyed_digest(self._key, "mail", email))

    async def request(self, kind: TokenPurpose | str, email: str) -> None:
        """Queue a mail of `kind` to `email`, once its budget allows (else RateLimited)."""
        await self.spend(email)
        await self._emails.request(kind, email)
