"""The transmission report of a sent fax: one A4 PDF page with the date,
destination, pages, duration, rate and result, and a reduced image of the
first page (what a fax machine's confirmation report shows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy.orm import Session

from kalliope_tel.fax import jobs
from kalliope_tel.fax.models import FaxInstance, FaxJob, JobState

DPI = 100
A4 = (827, 1169)  # pixels at 100 dpi
FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)


@dataclass(frozen=True)
class ReportData:
    title: str
    lines: list[tuple[str, str]]  # (label, value)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def write_report(target: Path, data: ReportData, first_page: Path | None) -> Path:
    page = Image.new("L", A4, 255)
    draw = ImageDraw.Draw(page)
    draw.text((60, 50), data.title, fill=0, font=_font(30))
    font = _font(18)
    y = 110
    for label, value in data.lines:
        draw.text((60, y), f"{label}:", fill=0, font=font)
        draw.text((300, y), value[:60], fill=0, font=font)
        y += 30
    if first_page is not None and first_page.exists():
        with Image.open(first_page) as tiff:
            tiff.seek(0)
            thumb = tiff.convert("L")
        # Fax pixels are not square at 204x98: scale each axis by its own dpi.
        xdpi, ydpi = (float(v) for v in tiff.info.get("dpi", (204, 196)))
        width_in, height_in = thumb.width / xdpi, thumb.height / ydpi
        box_w, box_h = A4[0] - 120, A4[1] - y - 80
        scale = min(box_w / (width_in * DPI), box_h / (height_in * DPI), 0.5)
        size = (max(1, int(width_in * DPI * scale)), max(1, int(height_in * DPI * scale)))
        thumb = thumb.resize(size, Image.Resampling.LANCZOS)
        y += 20
        draw.text((60, y), "Page 1 (reduced):", fill=0, font=font)
        y += 30
        page.paste(thumb, (60, y))
        draw.rectangle([59, y - 1, 60 + size[0], y + size[1]], outline=0)
    target.parent.mkdir(parents=True, exist_ok=True)
    page.save(target, "PDF", resolution=DPI)
    target.chmod(0o600)
    return target


@dataclass(frozen=True)
class ReportInfo:
    target: Path  # relative to the data directory
    first_page: Path  # relative to the data directory
    data: ReportData
    sender_email: str


def report_data(session: Session, job_id: int) -> ReportInfo | None:
    from kalliope_tel.users.models import User

    job = session.get(FaxJob, job_id)
    if job is None or job.report:
        return None
    instance = session.get(FaxInstance, job.instance_id)
    assert instance is not None
    attempts = jobs.attempts_of(session, job_id)
    last = attempts[-1] if attempts else None
    user = session.get(User, job.user_id) if job.user_id else None
    duration = (last.ended_at - last.started_at).total_seconds() if last and last.ended_at else 0
    lines = [
        ("Date", (last.started_at if last else job.created_at).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Destination", job.number),
        ("Fax instance", f"{instance.name} ({instance.selection})"),
        ("Sender", user.name if user else "-"),
        ("Pages", f"{last.pages if last else 0} of {job.pages}"),
        ("Duration", f"{round(duration)} seconds"),
        ("Rate", f"{last.bit_rate} bit/s" if last and last.bit_rate else "-"),
        ("ECM", "yes" if last and last.ecm else "no"),
        ("Remote station", last.remote_ident if last and last.remote_ident else "-"),
        ("Attempts", str(len(attempts))),
        ("Result", "OK" if job.state is JobState.SENT else f"{job.state.value.upper()}: {job.reason}"),
    ]
    return ReportInfo(
        Path(job.document).parent / "report.pdf",
        Path(job.document),
        ReportData("Fax transmission report", lines),
        user.email if user else "",
    )
