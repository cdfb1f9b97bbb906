"""Messages built from gated values only (see ``addresses``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from kalliope_tel.files import safe_file_name
from kalliope_tel.mail.addresses import check_address, header_text


@dataclass(frozen=True)
class Attachment:
    name: str
    content: bytes
    mime: str = "application/pdf"


_MSGID = re.compile(r"<[!-;=?-~]{1,250}>")


def message(
    sender: str,
    to: str,
    subject: str,
    body: str,
    attachments: list[Attachment] | None = None,
    in_reply_to: str = "",
) -> EmailMessage:
    """A message whose headers cannot carry anything but what they say.

    The SMTP policy also refuses any header value with a line break, a second
    fence behind the gate.
    """
    msg = EmailMessage(policy=SMTP)
    msg["From"] = check_address(sender)
    msg["To"] = check_address(to)
    msg["Subject"] = header_text(subject)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies back to us
    if _MSGID.fullmatch(in_reply_to):  # a reply threads under the request; anything else is left out
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    for attachment in attachments or []:
        maintype, _, subtype = attachment.mime.partition("/")
        msg.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=safe_file_name(attachment.name)
        )
    return msg
