"""The outbox's delivery worker: one per process, all sharing one outbox.

Each round leases the due mails (no other worker takes them while the lease lasts), turns
queued requests into mails, sends each, and marks it sent; a failed send is tried again later,
further and further apart, so that a mail server down for minutes delays mail and loses none.
A worker that dies leaves its lease to run out, and another sends the mail: delivery is at
least once, and a receiver can tell a repeat by its Message-ID (the outbox row's id).
"""

import asyncio
from datetime import timedelta

from app.core.clock import Clock
from app.core.errors import StoreUnavailable
from app.core.events import SecurityEvent, SecurityEvents
from app.core.logging import get_logger
from app.domain.mail import Mail
from app.mail.render import MailRenderer
from app.mail.transport import MailRejected, MailTransport
from app.services.account_emails import AccountEmails, is_request
from app.services.background import repeat
from app.storage.mail import DROPPED, FAILED, SENT, MailStore

# The shortest lease; a transport whose sends may take longer gets a longer one.
LEASE = timedelta(minutes=2)
# What a mail's handling needs beside its send: turning a request into the mail, marking it
# sent, and the difference between two instances' clocks.
LEASE_MARGIN = timedelta(seconds=30)
BATCH = 20
# 2 ** 17 s is beyond any MAIL_RETRY_MAX_SECONDS; a mail retried a thousand times must not
# overflow the float.
MAX_BACKOFF_EXPONENT = 17


def lease_terms(longest_send: float) -> tuple[timedelta, timedelta]:
    """The lease a worker takes on the mails it claims, and how much of it must be left for it
    to begin a send, with a transport whose sends are cut off after `longest_send` seconds.

    A send that began with less left could outlast the lease: another worker would take the
    mail meanwhile and send it again. The rest of the batch waits for the lease to end, then
    goes with whichever worker takes it.
    """
    budget = timedelta(seconds=longest_send) + LEASE_MARGIN
    return max(LEASE, 2 * budget), budget


class MailDelivery:
    def __init__(
        self,
        *,
        mail: MailStore,
        emails: AccountEmails,
        renderer: MailRenderer,
        transport: MailTransport,
        events: SecurityEvents,
        clock: Clock,
        poll_seconds: float,
        retry_max_seconds: float,
        give_up_after: timedelta,
        log_links: bool,
    ) -> None:
        self._mail = mail
        self._emails = emails
        self._renderer = renderer
        self._transport = transport
        self._events = events
        self._clock = clock
        self._poll = poll_seconds
        self._retry_max = retry_max_seconds
        self._give_up_after = give_up_after
        self._lease, self._send_budget = lease_terms(transport.longest_send)
        # Without a mail server the mails go to files; the log then says what to click.
        self._log_links = log_links
        # Bound here, after the app configured logging: bound at import, it would keep the
        # default configuration (plain lines on stdout).
        self._logger = get_logger("app.mail")

    async def deliver_due(self) -> int:
        """One round: every due mail this worker could lease; how many it leased."""
        claimed_at = self._clock.now()
        leased = await self._mail.claim(now=claimed_at, lease=self._lease, limit=BATCH)
        lease_end = claimed_at + self._lease
        for mail in leased:
            if lease_end - self._clock.now() < self._send_budget:
                break
            await self._deliver(mail)
        return len(leased)

    async def _deliver(self, leased: Mail) -> None:
        mail: Mail | None = leased
        try:
            if is_request(leased):
                mail = await self._emails.prepare(leased)
                if mail is None:
                    await self._mail.finish(leased, outcome=DROPPED, now=self._clock.now())
                    return
            assert mail is not None
            message = self._renderer.message(
                kind=mail.kind, to=mail.address, message_id=mail.id, context=mail.payload
            )
            async with asyncio.timeout(self._transport.longest_send):
                await self._transport.send(message)
        except StoreUnavailable:
            raise
        except MailRejected as refusal:
            await self._give_up(mail or leased, "mail_refused", str(refusal))
            return
        except Exception as error:
            await self._retry_later(mail or leased, error)
            return
        await self._mail.finish(mail, outcome=SENT, now=self._clock.now())
        self._events.emit(SecurityEvent.MAIL_SENT, kind=mail.kind)
        link = mail.payload.get("link") if self._log_links else None
        self._logger.info("mail_sent", mail_id=mail.id, kind=mail.kind, link=link)

    async def _retry_later(self, mail: Mail, error: Exception) -> None:
        now = self._clock.now()
        reason = f"{type(error).__name__}: {error}"
        if mail.created_at is not None and now - mail.created_at > self._give_up_after:
            await self._give_up(mail, "mail_given_up", reason)
            return
        # 1, 2, 4... seconds apart, capped.
        delay = min(self._retry_max, 2.0 ** min(mail.attempts, MAX_BACKOFF_EXPONENT))
        await self._mail.retry(mail, at=now + timedelta(seconds=delay), error=reason)
        self._logger.warning(
            "mail_send_failed", mail_id=mail.id, kind=mail.kind, retry_in=delay, reason=reason
        )

    async def _give_up(self, mail: Mail, event: str, reason: str) -> None:
        """Mark the mail failed; the store forgets its payload (and token) and address."""
        await self._mail.finish(mail, outcome=FAILED, now=self._clock.now())
        self._events.emit(SecurityEvent.MAIL_FAILED, kind=mail.kind)
        self._logger.error(event, mail_id=mail.id, kind=mail.kind, reason=reason)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, finishing the round under way (a mail half-handled
        would be left leased until its lease ran out); a store that is down only delays mail."""

        async def deliver() -> None:
            while not stop.is_set() and await self.deliver_due():
                pass

        # Each round starts a poll after the last; the first a poll after start-up, when the
        # service has begun taking requests.
        await repeat(
            deliver,
            every=self._poll,
            stop=stop,
            logger=self._logger,
            unavailable="mail_outbox_unavailable",
            failed="mail_delivery_error",
        )
