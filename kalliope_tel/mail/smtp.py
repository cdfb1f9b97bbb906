"""Sending over SMTP with aiosmtplib, as the settings say (STARTTLS when the
server offers it; implicit TLS for ``smtps://``)."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import urlsplit

import aiosmtplib

from kalliope_tel.config import Settings
from kalliope_tel.errors import KalliopeError


class MailNotSent(KalliopeError):
    """The server refused the message or could not be reached; ``permanent``
    when retrying cannot help (5xx for the recipient)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


async def send(settings: Settings, msg: EmailMessage, timeout: float = 30.0) -> None:
    url = urlsplit(settings.smtp_url)
    implicit_tls = url.scheme == "smtps"
    password = settings.smtp_password.get_secret_value()
    try:
        await aiosmtplib.send(
            msg,
            hostname=url.hostname or "127.0.0.1",
            port=url.port or (465 if implicit_tls else 25),
            use_tls=implicit_tls,
            start_tls=None if not implicit_tls else False,
            username=settings.smtp_username or None,
            password=password or None,
            timeout=timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise MailNotSent(f"recipient refused: {exc.recipients[0].message}", permanent=True) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise MailNotSent(f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        # Never the password: aiosmtplib's messages carry none, and we add none.
        raise MailNotSent(f"SMTP server {url.hostname}:{url.port}: {type(exc).__name__}: {exc}") from None
