"""The transmission report of a sent fax: one A4 PDF page with the date,
destination, pages, duration, rate and result, and a reduced image of the
first page (what a fax machine's confirmation report shows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

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
