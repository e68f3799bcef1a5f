"""A real SMTP server on loopback (aiosmtpd, in a thread of its own) that keeps what it
receives; it can be stopped and started again on the same port, speak STARTTLS or implicit TLS
with a self-signed certificate made for the test, ask for a password, refuse recipients, and
answer slowly."""

import asyncio
import datetime
import email
import ipaddress
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, Literal

import anyio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import free_port

LINK = re.compile(r"https?://\S+\?token=([A-Za-z0-9_.%-]+)")
# What a server answers for a mailbox that does not exist: permanent, never worth a retry.
NO_SUCH_MAILBOX = "550 5.1.1 No such mailbox here"
Security = Literal["none", "starttls", "tls"]


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Recipients the server refuses, and every recipient it was offered (refused ones too).
    refused: set[str] = field(default_factory=set)
    offered: list[str] = field(default_factory=list)
    # Called as each message is accepted, on the server's thread (a test's way to make a
    # send take long, by moving the app's clock).
    on_accept: Callable[[], None] | None = None
    # Seconds the server takes before each answer to EHLO, MAIL, RCPT and DATA: a slow server
    # whose every answer comes within the client's timeout, but not the whole exchange.
    answer_after: float = 0.0

    async def handle_EHLO(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, answer: list[str]
    ) -> list[str]:
        session.host_name = hostname
        await asyncio.sleep(self.answer_after)
        return answer

    async def handle_MAIL(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.answer_after)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope, address: str, _: list[str]
    ) -> str:
        await asyncio.sleep(self.answer_after)
        with self.lock:
            self.offered.append(address)
        if address in self.refused:
            return NO_SUCH_MAILBOX
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        await asyncio.sleep(self.answer_after)
        if self.on_accept is not None:
            self.on_accept()
        with self.lock:
            self.messages.append(email.message_from_bytes(content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def all(self) -> list[Message]:
        with self.lock:
            return list(self.messages)

    def message_ids(self) -> Counter[str]:
        """How often each Message-ID arrived."""
        return Counter(str(message["Message-ID"]) for message in self.all())

    def wait_for(self, address: str, count: int = 1, timeout: float = 10) -> list[Message]:
        """The messages to `address` once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(self.to(address))} of {count} mails to {address} arrived")

    async def arrived(self, address: str, count: int = 1, within: float = 10) -> list[Message]:
        """The messages to `address` once there are `count` of them, waited for without
        blocking the event loop (the app under test runs on it)."""
        return await _polled(lambda: self.to(address), count, within)

    async def total(self, count: int, within: float = 10) -> list[Message]:
        """Every message, once there are `count` of them."""
        return await _polled(self.all, count, within)


async def _polled(read: Callable[[], list[Message]], count: int, within: float) -> list[Message]:
    """What `read` returns once it holds `count` messages (the server's thread adds them)."""
    with anyio.fail_after(within):
        while True:
            if len(found := read()) >= count:
                return found
            await anyio.sleep(0.02)


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


def link_in(message: Message) -> str:
    """The link with a token in a mail."""
    found = LINK.search(text_of(message))
    assert found, text_of(message)
    return found.group(0)


def token_in(message: Message) -> str:
    """The token of the link in a mail."""
    found = LINK.search(text_of(message))
    assert found, text_of(message)
    return found.group(1).replace("%2E", ".").replace("%2e", ".")


@dataclass
class MailServer:
    port: int
    inbox: Inbox
    tls: ssl.SSLContext | None
    # With `tls`: "starttls" (required before MAIL) or "tls" (implicit, from the first byte).
    security: Security = "none"
    # With STARTTLS: the login and password every client must give (AUTH PLAIN or LOGIN).
    credentials: tuple[str, str] | None = None
    _controller: Controller | None = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        login, password = (part.encode() for part in self.credentials)
        right = isinstance(data, LoginPassword) and (data.login, data.password) == (login, password)
        return AuthResult(success=right, handled=False)

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self.security == "tls":
            options["ssl_context"] = self.tls
        elif self.security == "starttls":
            options.update(tls_context=self.tls, require_starttls=True)
        if self.credentials is not None:
            options.update(authenticator=self._authenticate, auth_required=True)
        self._controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, server_hostname="mx.test", **options
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files: the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp.pem", folder / "smtp.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@contextmanager
def mail_server(
    tls_folder: Path | None = None,
    *,
    security: Security | None = None,
    credentials: tuple[str, str] | None = None,
) -> Iterator[MailServer]:
    """An SMTP server on a free port. With `tls_folder`, one that speaks TLS with a self-signed
    certificate written there (smtp.pem, to trust): STARTTLS, required before any mail, unless
    `security` says "tls" (implicit TLS). With `credentials`, one that wants them (after
    STARTTLS) before any mail."""
    tls = None
    if tls_folder is not None:
        cert_file, key_file = self_signed_certificate(tls_folder)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert_file, key_file)
        security = security or "starttls"
    server = MailServer(
        port=free_port(),
        inbox=Inbox(),
        tls=tls,
        security=security or "none",
        credentials=credentials,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
