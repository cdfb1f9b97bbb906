"""The e-mails of the fax service, as KalliopePBX words them.

Received: subject ``[<SERIAL>] FAX successfully received from 0<calling>``,
body with date and time, transmission time and pages, the PDF attached.
Sent: the transmission report attached, the outcome in the subject.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from kalliope_tel.fax.models import FaxJob, FaxReceived
from kalliope_tel.mail.compose import Attachment, message


def subject_tag(serial: str, pbx_slug: str) -> str:
    """What goes in [...] at the start of every fax mail subject."""
    return serial or pbx_slug.upper()


def _local(when: datetime, timezone: str) -> str:
    return when.astimezone(ZoneInfo(timezone)).strftime("%d/%m/%Y %H:%M:%S")


def received_mail(
    fax: FaxReceived, *, serial: str, pbx_slug: str, timezone: str, sender: str, to: str, pdf: Path
) -> EmailMessage:
    calling = "0" + fax.calling if fax.calling else "an unknown number"
    seconds = round((fax.ended_at - fax.started_at).total_seconds())
    if fax.ok:
        subject = f"[{subject_tag(serial, pbx_slug)}] FAX successfully received from {calling}"
    else:
        subject = f"[{subject_tag(serial, pbx_slug)}] FAX partially received from {calling}"
    body = [
        f"FAX received from {calling}",
        f"Date and time: {_local(fax.started_at, timezone)}",
        f"Transmission time : {seconds} seconds",
        f"Number of pages: {fax.pages}",
    ]
    if not fax.ok:
        body.append(f"The transmission did not complete: {fax.reason}")
    return message(sender, to, subject, "\n".join(body) + "\n", [Attachment(fax.file_name, pdf.read_bytes())])


def report_mail(
    job: FaxJob, *, serial: str, pbx_slug: str, sender: str, to: str, report: Path, summary: list[str]
) -> EmailMessage:
    tag = subject_tag(serial, pbx_slug)
    outcome = {"sent": "sent", "failed": "NOT sent", "cancelled": "cancelled"}.get(job.state.value, job.state.value)
    subject = f"[{tag}] FAX to {job.number} {outcome}"
    body = "\n".join(summary) + "\n"
    return message(sender, to, subject, body, [Attachment(f"fax-report-{job.id}.pdf", report.read_bytes())])
