"""Documents to fax pages, and received fax pages to PDF.

A fax can only carry black-and-white pages of a fax width (1728 pixels for
A4/Letter) at a fax resolution (204x196 "fine" or 204x98 "standard");
spandsp fails anything else in phase B, seconds into a paid call. So every
document is converted and checked here, before any call is placed, and a
document that cannot be sent is refused at once with the reason:

- PDF: opened with pikepdf first (a password or a broken file is named as
  such), then rendered by Ghostscript's ``tiffg4`` fax device, fitted to A4
  (the device pads or trims to 1728 pixels itself);
- DOC, DOCX, ODT (and RTF): LibreOffice headless to PDF, then as above;
- TIFF, PNG, JPEG: scaled to the fax width and thresholded with Pillow.

The type comes from the file's first bytes, not its name. The result is a
multi-page G4 TIFF whose page count is known before dialling.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import structlog

from kalliope_tel.errors import KalliopeError

log = structlog.get_logger(__name__)
FAX_WIDTH = 1728
RESOLUTIONS = {"fine": (204, 196), "standard": (204, 98)}
MAX_PAGES = 200
CONVERT_TIMEOUT = 180  # LibreOffice's first start with a new profile takes seconds


class DocumentRefused(KalliopeError):
    """The document cannot be faxed; ``reason`` says why, for the user."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class FaxDocument:
    tiff: Path
    pages: int
    kind: str  # pdf, docx, odt, doc, rtf, image
    resolution: str


def sniff(path: Path) -> str:
    """The document's kind from its content."""
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "doc"  # OLE2: Word 97-2003 (or an encrypted OOXML, which LibreOffice names)
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith((b"II*\x00", b"MM\x00*", b"\x89PNG", b"\xff\xd8\xff")):
        return "image"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = set(z.namelist())
                if "word/document.xml" in names:
                    return "docx"
                if "mimetype" in names and z.read("mimetype").startswith(b"application/vnd.oasis.opendocument.text"):
                    return "odt"
        except zipfile.BadZipFile:
            raise DocumentRefused(path.name, "a damaged ZIP archive (not a readable DOCX or ODT)") from None
        return "zip"
    return "unknown"


def prepare(source: Path, workdir: Path, *, resolution: str = "fine") -> FaxDocument:
    """Convert ``source`` to fax pages in ``workdir``; raise ``DocumentRefused``."""
    name = source.name
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution: one of {', '.join(RESOLUTIONS)}")
    if not source.is_file():
        raise DocumentRefused(name, "no such file")
    if source.stat().st_size == 0:
        raise DocumentRefused(name, "the file is empty")
    kind = sniff(source)
    if kind in ("unknown", "zip"):
        raise DocumentRefused(name, "not a PDF, DOC, DOCX, ODT, RTF or image file")
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / (source.name + ".fax.tif")
    if kind == "image":
        _image_to_fax(source, target, resolution)
    else:
        pdf = source if kind == "pdf" else _office_to_pdf(source, workdir)
        _check_pdf(pdf, name)
        _pdf_to_fax(pdf, target, resolution, name)
    pages = _verify(target, name, resolution)
    log.info("fax_document_ready", source=name, kind=kind, pages=pages, resolution=resolution)
    return FaxDocument(target, pages, kind, resolution)


def _check_pdf(pdf: Path, name: str) -> None:
    import pikepdf

    try:
        with pikepdf.open(pdf) as doc:
            pages = len(doc.pages)
    except pikepdf.PasswordError:
        raise DocumentRefused(name, "the PDF is password-protected; send it without a password") from None
    except pikepdf.PdfError as exc:
        detail = _first_line(str(exc)).replace(f"{pdf}: ", "")  # the user knows which file
        raise DocumentRefused(name, f"a damaged PDF ({detail})") from None
    if pages == 0:
        raise DocumentRefused(name, "the PDF has no pages")
    if pages > MAX_PAGES:
        raise DocumentRefused(name, f"{pages} pages: more than the {MAX_PAGES} a fax may carry")


def _pdf_to_fax(pdf: Path, target: Path, resolution: str, name: str) -> None:
    gs = shutil.which("gs")
    if gs is None:
        raise KalliopeError("Ghostscript (gs) is not installed; scripts/bootstrap.sh installs it")
    x, y = RESOLUTIONS[resolution]
    command = [
        gs,
        "-q",
        "-dSAFER",
        "-dBATCH",
        "-dNOPAUSE",
        "-sDEVICE=tiffg4",  # the fax device: 1-bit, width forced to 1728 (AdjustWidth)
        f"-r{x}x{y}",
        "-sPAPERSIZE=a4",
        "-dFIXEDMEDIA",
        "-dPDFFitPage",
        f"-sOutputFile={target}",
        str(pdf),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT, check=False)
    if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        detail = _first_line(done.stderr or done.stdout) or f"exit {done.returncode}"
        raise DocumentRefused(name, f"the PDF cannot be rendered ({detail})")


def _office_to_pdf(source: Path, workdir: Path) -> Path:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise KalliopeError("LibreOffice (soffice) is not installed; scripts/bootstrap.sh installs it")
    outdir = Path(tempfile.mkdtemp(prefix="office-", dir=workdir))  # never over a PDF of the same name
    with tempfile.TemporaryDirectory(prefix="kt-lo-") as profile:
        # A private profile: two conversions at once would fight over one.
        command = [
            soffice,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--convert-to",
            "pdf",
            "--outdir",
            str(outdir),
            str(source),
        ]
        env = {**os.environ, "HOME": profile}
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            raise DocumentRefused(source.name, "LibreOffice did not finish converting it") from None
    pdf = outdir / (source.stem + ".pdf")
    if not pdf.exists() or pdf.stat().st_size == 0:
        # LibreOffice exits 0 on a file it cannot load; it says so on stderr.
        detail = _first_line(done.stderr) or "no output"
        protected = "password" in (done.stderr + done.stdout).lower() or sniff(source) == "doc"
        reason = "it cannot be opened (damaged, or password-protected)" if protected else "it cannot be opened"
        raise DocumentRefused(source.name, f"{reason}: {detail}")
    return pdf


def _image_to_fax(source: Path, target: Path, resolution: str) -> None:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    x_dpi, y_dpi = RESOLUTIONS[resolution]
    try:
        image = Image.open(source)
        pages = []
        for frame in ImageSequence.Iterator(image):
            src_x, src_y = (float(v) for v in frame.info.get("dpi", (x_dpi, y_dpi)))
            scale = FAX_WIDTH / frame.width
            height = max(1, round(frame.height * scale * (y_dpi / x_dpi) * (src_x / src_y)))
            grey = frame.convert("L").resize((FAX_WIDTH, height))
            pages.append(grey.point(lambda v: 255 if v > 127 else 0).convert("1"))
    except (UnidentifiedImageError, OSError) as exc:
        raise DocumentRefused(source.name, f"a damaged image ({exc})") from None
    if not pages:
        raise DocumentRefused(source.name, "the image has no pages")
    pages[0].save(target, save_all=True, append_images=pages[1:], compression="group4", dpi=(x_dpi, y_dpi))


def _verify(target: Path, name: str, resolution: str) -> int:
    """Check the pages are what spandsp will accept; return how many."""
    from PIL import Image

    x_dpi, y_dpi = RESOLUTIONS[resolution]
    with Image.open(target) as image:
        count = getattr(image, "n_frames", 1)
        blank = 0
        for n in range(count):
            image.seek(n)
            if image.mode != "1" or image.width != FAX_WIDTH:
                raise DocumentRefused(name, f"page {n + 1} came out {image.width} px, {image.mode}: not a fax page")
            dpi = image.info.get("dpi", (0, 0))
            if abs(float(dpi[0]) - x_dpi) > 1 or abs(float(dpi[1]) - y_dpi) > 1:
                raise DocumentRefused(name, f"page {n + 1} came out at {dpi} dpi, not {x_dpi}x{y_dpi}")
            if image.convert("L").getextrema()[0] == 255:  # no black pixel
                blank += 1
    if blank == count:
        raise DocumentRefused(name, "every page is blank")
    return count


def tiff_to_pdf(tiff: Path, pdf: Path) -> int:
    """A received fax as a PDF, each page sized by its own resolution (a
    204x98 page is as tall as a 204x196 one). Returns the page count."""
    import img2pdf  # type: ignore[import-untyped]
    from PIL import Image

    with Image.open(tiff) as image:
        count = getattr(image, "n_frames", 1)
    pdf.write_bytes(img2pdf.convert(str(tiff), rotation=img2pdf.Rotation.ifvalid))
    return count


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:200]
    return ""
