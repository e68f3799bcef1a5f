"""Where a finished message goes: an SMTP server (aiosmtplib), or a folder of .eml files."""

import asyncio
import os
import ssl
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from app.core.config import Settings


class MailRejected(Exception):
    """The mail server refused this message for good (a 5xx answer to its recipient or to its
    content): sent again, it would be refused again."""


def _permanent(error: aiosmtplib.SMTPRecipientsRefused | aiosmtplib.SMTPDataError) -> bool:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code >= 500 for refused in error.recipients)
    return error.code >= 500


# aiosmtplib's timeout bounds each step of a send (connecting, each command, the message), not
# the whole: the whole is bounded by this many of them, so that a server answering each step
# just in time cannot stretch one send past the lease its worker holds on the mail.
SMTP_SEND_STEPS = 3
# Writing a file takes no time worth speaking of; a disk that hangs is cut off after this.
FOLDER_SEND_SECONDS = 10.0


class MailTransport(Protocol):
    # How long one send may take in all: the worker abandons it then (TimeoutError).
    longest_send: float

    async def send(self, message: EmailMessage) -> None:
        """Deliver `message`, or raise: MailRejected when sending it again is pointless. A message
        may be sent again after another failure, so the receiver can recognise it by its
        Message-ID."""
        ...


class SmtpTransport:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        security: Literal["none", "starttls", "tls"],
        ca_file: str | None,
        timeout: float,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._security = security
        self._timeout = timeout
        self.longest_send = timeout * SMTP_SEND_STEPS
        # Certificates are always checked: against the system's authorities, or the bundle
        # named (a private mail relay's own authority).
        self._tls = ssl.create_default_context(cafile=ca_file)

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._security == "tls",
                start_tls=self._security == "starttls",
                tls_context=self._tls if self._security != "none" else None,
                timeout=self._timeout,
            )
        # Only what is about this message: a refused sender or password is the configuration's
        # fault, and every mail waits for it to be mended.
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPDataError) as error:
            if _permanent(error):
                raise MailRejected(f"{type(error).__name__}: {error}") from error
            raise


class FolderTransport:
    """Writes each message as `<folder>/<Message-ID>.eml`: `python run.py` works without a mail
    server, and the files show what would have been sent."""

    longest_send = FOLDER_SEND_SECONDS

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def _write(self, message: EmailMessage) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").replace("/", "_") + ".eml"
        # Written aside and renamed, so that a reader never sees half a message.
        handle, partial = tempfile.mkstemp(dir=self._folder, suffix=".partial")
        with os.fdopen(handle, "wb") as file:
            file.write(message.as_bytes())
        os.replace(partial, self._folder / name)

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)


def transport_from_settings(settings: Settings) -> SmtpTransport | FolderTransport:
    """SMTP when SMTP_HOST is set, else .eml files in MAIL_FOLDER."""
    if settings.SMTP_HOST is None:
        return FolderTransport(Path(settings.MAIL_FOLDER))
    return SmtpTransport(
        host=settings.SMTP_HOST,
        port=settings.SMTP_PORT,
        username=settings.SMTP_USERNAME,
        password=settings.SMTP_PASSWORD.get_secret_value() if settings.SMTP_PASSWORD else None,
        security=settings.SMTP_SECURITY,
        ca_file=settings.SMTP_CA_FILE,
        timeout=settings.SMTP_TIMEOUT_SECONDS,
    )
