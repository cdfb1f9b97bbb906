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

Every document comes from a stranger (the web form, a mail, an operator's
file), so nothing is unpacked or decoded before its declared size is
checked: a ZIP's members (``safe_zip``), an image's pixels and the pages
any document would make (``MAX_PAGES``). LibreOffice and Ghostscript run in
the jail of ``kalliope_tel.sandbox``, each on a copy of its input in a
scratch folder of its own; this module itself runs in the converter process
of ``kalliope_tel.fax.conversion``, under its memory and CPU limits.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from kalliope_tel import archives, catalogue, sandbox
from kalliope_tel.errors import KalliopeError

if TYPE_CHECKING:
    from PIL import Image

log = structlog.get_logger(__name__)
FAX_WIDTH = 1728
RESOLUTIONS = {"fine": (204, 196), "standard": (204, 98)}
MAX_PAGES = 200
CONVERT_TIMEOUT = 180  # LibreOffice's first start with a new profile takes seconds
# A 600 dpi A4 scan is 35 million pixels; decoding costs about 4 bytes each.
MAX_IMAGE_PIXELS = 40_000_000
# An A4 page's rows at each resolution; a taller image is cut into pages.
PAGE_ROWS = {"fine": 2292, "standard": 1146}


# What a DOCX or ODT may declare before anything unpacks it. Real ones have
# tens of members, a few MiB unpacked, and XML that deflates 5 to 30 times;
# a member a hundred times smaller packed than unpacked is padding.
class DocumentRefused(KalliopeError):
    """The document cannot be faxed; ``reason`` says why, for the user."""

    def __init__(self, name: str, reason: str, /, **params: Any) -> None:
        # ``reason``: a catalogue code (with ``params``) or, from older
        # callers, a sentence; the message names the document either way.
        coded = catalogue.has(reason)
        super().__init__("fax.doc.refused", name=name, reason=catalogue.Phrase(reason, params) if coded else reason)
        self.name = name
        self.reason_code = reason if coded else ""
        self.reason_params = params
        self.reason = catalogue.render(catalogue.DEFAULT, reason, params) if coded else reason


@dataclass(frozen=True)
class FaxDocument:
    tiff: Path
    pages: int
    kind: str  # pdf, docx, odt, doc, rtf, image
    resolution: str


def sniff(path: Path) -> str:
    """The document's kind from its content (reads a ZIP's directory and at
    most 64 bytes of one member, after ``safe_zip``)."""
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
                safe_zip(path.name, z)
                names = set(z.namelist())
                if "word/document.xml" in names:
                    return "docx"
                if "mimetype" in names:
                    with z.open("mimetype") as member:
                        if member.read(64).startswith(b"application/vnd.oasis.opendocument.text"):
                            return "odt"
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError):
            raise DocumentRefused(path.name, "fax.doc.bad_zip") from None
        return "zip"
    return "unknown"


def safe_zip(name: str, archive: zipfile.ZipFile) -> None:
    """Refuse an archive whose directory declares more than a document could hold."""
    refusal = archives.zip_refusal(archive)
    if refusal is not None:
        code, params = refusal
        raise DocumentRefused(name, code, **params)


def prepare(source: Path, workdir: Path, *, resolution: str = "fine") -> FaxDocument:
    """Convert ``source`` to fax pages in ``workdir``; raise ``DocumentRefused``."""
    name = source.name
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution: one of {', '.join(RESOLUTIONS)}")
    if not source.is_file():
        raise DocumentRefused(name, "fax.doc.missing")
    if source.stat().st_size == 0:
        raise DocumentRefused(name, "fax.doc.empty")
    kind = sniff(source)
    if kind in ("unknown", "zip"):
        raise DocumentRefused(name, "fax.doc.kind")
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
        raise DocumentRefused(name, "fax.doc.pdf_password") from None
    except pikepdf.PdfError as exc:
        detail = _first_line(str(exc)).replace(f"{pdf}: ", "")  # the user knows which file
        raise DocumentRefused(name, "fax.doc.pdf_damaged", detail=detail) from None
    if pages == 0:
        raise DocumentRefused(name, "fax.doc.pdf_empty")
    if pages > MAX_PAGES:
        raise DocumentRefused(name, "fax.doc.too_many_pages", pages=pages, limit=MAX_PAGES)


def _pdf_to_fax(pdf: Path, target: Path, resolution: str, name: str) -> None:
    gs = shutil.which("gs")
    if gs is None:
        raise KalliopeError("Ghostscript (gs) is not installed; scripts/bootstrap.sh installs it")
    x, y = RESOLUTIONS[resolution]
    with _scratch() as part:
        staged = _stage(pdf, part, "document.pdf")
        output = part / "fax.tif"
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
            f"-dLastPage={MAX_PAGES}",
            f"-sOutputFile={output}",
            str(staged),
        ]
        try:
            done = subprocess.run(
                sandbox.jailed(command, writable=[part]),
                capture_output=True, text=True, timeout=CONVERT_TIMEOUT, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise DocumentRefused(name, "fax.doc.gs_timeout", seconds=CONVERT_TIMEOUT) from None
        if done.returncode != 0 or not output.exists() or output.stat().st_size == 0:
            detail = _first_line(done.stderr or done.stdout) or f"exit {done.returncode}"
            raise DocumentRefused(name, "fax.doc.pdf_unrendered", detail=detail)
        shutil.copyfile(output, target)  # a file of this process's user, not the jail's


# LibreOffice's settings for strangers' documents: never update links or
# fields on load, never run macros (the jail is the wall; this is the door).
_LO_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">\
<prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">\
<prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">\
<prop oor:name="BlockUntrustedRefererLinks" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Writer/Content/Update">\
<prop oor:name="Link" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Writer/Content/Update">\
<prop oor:name="Field" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
"""


def _office_to_pdf(source: Path, workdir: Path) -> Path:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise KalliopeError("LibreOffice (soffice) is not installed; scripts/bootstrap.sh installs it")
    with _scratch() as part:
        staged = _stage(source, part, "document" + (source.suffix.lower()[:6] or ".bin"))
        # A private profile per conversion: two at once would fight over one,
        # and a document must find nothing another one left.
        profile = part / "profile"
        (profile / "user").mkdir(parents=True)
        (profile / "user" / "registrymodifications.xcu").write_text(_LO_SETTINGS)
        outdir = part / "out"
        outdir.mkdir()
        for path in (profile, profile / "user", profile / "user" / "registrymodifications.xcu", outdir):
            sandbox.hand_over(path)
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
            str(staged),
        ]
        try:
            done = subprocess.run(
                sandbox.jailed(command, writable=[part], env={"HOME": str(profile)}),
                capture_output=True, text=True, timeout=CONVERT_TIMEOUT, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise DocumentRefused(source.name, "fax.doc.office_timeout", seconds=CONVERT_TIMEOUT) from None
        produced = outdir / (staged.stem + ".pdf")
        if not produced.exists() or produced.stat().st_size == 0:
            # LibreOffice exits 0 on a file it cannot load; it says so on stderr.
            detail = _first_line(done.stderr) or "no output"
            protected = "password" in (done.stderr + done.stdout).lower() or sniff(source) == "doc"
            reason = "fax.doc.office_protected" if protected else "fax.doc.office_unopened"
            raise DocumentRefused(source.name, reason, detail=detail)
        workdir.mkdir(parents=True, exist_ok=True)
        pdf = Path(tempfile.mkdtemp(prefix="office-", dir=workdir)) / (source.stem + ".pdf")
        shutil.copyfile(produced, pdf)
    return pdf


@contextmanager
def _scratch() -> Iterator[Path]:
    """A folder the jail may write, removed afterwards whatever happened."""
    parent = Path(tempfile.mkdtemp(prefix="kt-jail-", dir=sandbox.JAIL_BASE))
    try:
        parent.chmod(0o711)  # the jail's user passes through to its own folder only
        part = parent / "part"
        part.mkdir()
        sandbox.hand_over(part)
        yield part
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _stage(source: Path, part: Path, name: str) -> Path:
    """A copy of ``source`` the jail's user may read (it cannot reach ours)."""
    staged = part / name
    shutil.copyfile(source, staged)
    sandbox.hand_over(staged)
    return staged


def _image_to_fax(source: Path, target: Path, resolution: str) -> None:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    x_dpi, y_dpi = RESOLUTIONS[resolution]
    name = source.name
    try:
        image = Image.open(source)  # reads the header only
        frames = getattr(image, "n_frames", 1)
        if frames > MAX_PAGES:
            raise DocumentRefused(name, "fax.doc.too_many_pages", pages=frames, limit=MAX_PAGES)
        heights = []
        for frame in ImageSequence.Iterator(image):
            if frame.width * frame.height > MAX_IMAGE_PIXELS:
                raise DocumentRefused(
                    name, "fax.doc.image_pixels", width=frame.width, height=frame.height, limit=f"{MAX_IMAGE_PIXELS:,}"
                )
            src_x, src_y = (float(v) or 1.0 for v in frame.info.get("dpi", (x_dpi, y_dpi)))
            scale = FAX_WIDTH / frame.width
            heights.append(max(1, round(frame.height * scale * (y_dpi / x_dpi) * (src_x / src_y))))
        total = sum(_pages_for(h, resolution) for h in heights)
        if total > MAX_PAGES:  # counted before a single row is scaled
            raise DocumentRefused(name, "fax.doc.image_pages", pages=total, limit=MAX_PAGES)
        pages = []
        for frame, height in zip(ImageSequence.Iterator(image), heights, strict=True):
            grey = frame.convert("L").resize((FAX_WIDTH, height))
            pages += _cut(grey.point(lambda v: 255 if v > 127 else 0).convert("1"), resolution)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise DocumentRefused(name, "fax.doc.image_damaged", detail=_first_line(str(exc))) from None
    if not pages:
        raise DocumentRefused(name, "fax.doc.image_empty")
    pages[0].save(target, save_all=True, append_images=pages[1:], compression="group4", dpi=(x_dpi, y_dpi))


def _pages_for(height: int, resolution: str) -> int:
    """Fax pages of an image ``height`` rows tall once scaled: one up to a
    quarter longer than A4 (a photographed page), else A4 slices."""
    rows = PAGE_ROWS[resolution]
    return 1 if height <= rows * 5 // 4 else math.ceil(height / rows)


def _cut(page: Image.Image, resolution: str) -> list[Image.Image]:
    count = _pages_for(page.height, resolution)
    if count == 1:
        return [page]
    rows = math.ceil(page.height / count)  # even slices, no sliver at the end
    return [page.crop((0, top, FAX_WIDTH, min(page.height, top + rows))) for top in range(0, page.height, rows)]


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
                raise DocumentRefused(name, "fax.doc.bad_page", page=n + 1, detail=f"{image.width} px, {image.mode}")
            dpi = image.info.get("dpi", (0, 0))
            if abs(float(dpi[0]) - x_dpi) > 1 or abs(float(dpi[1]) - y_dpi) > 1:
                raise DocumentRefused(name, "fax.doc.bad_page", page=n + 1, detail=f"{dpi} dpi, not {x_dpi}x{y_dpi}")
            if image.convert("L").getextrema()[0] == 255:  # no black pixel
                blank += 1
    if blank == count:
        raise DocumentRefused(name, "fax.doc.blank")
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
