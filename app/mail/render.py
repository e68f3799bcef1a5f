"""Messages from templates: a subject, a plain-text body and an HTML body per kind of mail,
each overridable by a file of the same name in MAIL_TEMPLATES_DIR."""

from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import jinja2

from app.core.config import Settings


class MailRenderer:
    def __init__(self, *, sender: str, domain: str, overrides: Path | None) -> None:
        self._sender = sender
        self._domain = domain
        loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("app.mail", "templates")]
        if overrides is not None:
            loaders.insert(0, jinja2.FileSystemLoader(overrides))
        # The subject and the text/plain body are not HTML: escaping would show "&amp;".
        self._text = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=False,  # noqa: S701
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self._html = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders), autoescape=True, undefined=jinja2.StrictUndefined
        )

    def message(
        self, *, kind: str, to: str, message_id: str, context: Mapping[str, object]
    ) -> EmailMessage:
        """The message of `kind` to `to`, identified by `message_id` (the outbox row's id, so
        that a resent message is recognisably the same one)."""
        subject = self._text.get_template(f"{kind}.subject.txt").render(context).strip()
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = " ".join(subject.split())
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{message_id}@{self._domain}>"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(self._text.get_template(f"{kind}.txt").render(context))
        message.add_alternative(
            self._html.get_template(f"{kind}.html").render(context), subtype="html"
        )
        return message


def renderer_from_settings(settings: Settings) -> MailRenderer:
    sender = settings.MAIL_FROM
    domain = sender.rpartition("@")[2].rstrip(">").strip() or "localhost"
    overrides = Path(settings.MAIL_TEMPLATES_DIR) if settings.MAIL_TEMPLATES_DIR else None
    return MailRenderer(sender=sender, domain=domain, overrides=overrides)
