"""Documents to fax pages with the real tools (Ghostscript, LibreOffice,
pikepdf), refusals before any call, and received pages back to PDF."""

from __future__ import annotations

from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageDraw

from kalliope_tel.fax.documents import DocumentRefused, prepare, tiff_to_pdf
from kalliope_tel.fax.loopback import run_g711
from kalliope_tel.fax.session import AudioFaxSession
from tests.fax_support import make_document, received_pages
from tests.office_docs import write_docx, write_odt

pytestmark = pytest.mark.integration


def _pdf(path: Path, pages: int) -> None:
    """An A4 PDF at 200 dpi with a black box whose place depends on the page."""
    images = []
    for n in range(pages):
        page = Image.new("L", (1654, 2339), 255)
        ImageDraw.Draw(page).rectangle([200 + n * 300, 300, 500 + n * 300, 600], fill=0)
        images.append(page)
    images[0].save(path, save_all=True, append_images=images[1:], resolution=200)


def _fax_pages(tiff: Path) -> list[Image.Image]:
    image = Image.open(tiff)
    out = []
    for n in range(image.n_frames):
        image.seek(n)
        assert (image.mode, image.width) == ("1", 1728)
        assert tuple(round(float(v)) for v in image.info["dpi"]) == (204, 196)
        out.append(image.convert("L"))
    return out


def test_pdf_becomes_fax_pages_with_content_in_place(tmp_path: Path) -> None:
    _pdf(tmp_path / "three.pdf", 3)
    doc = prepare(tmp_path / "three.pdf", tmp_path / "out")
    assert (doc.kind, doc.pages) == ("pdf", 3)
    pages = _fax_pages(doc.tiff)
    assert len(pages) == 3
    for n, page in enumerate(pages):
        assert abs(page.height - 2292) <= 4  # A4 at 196 lines per inch
        # The box, at 204x196 dpi: its middle black, a point beside it white.
        cx, cy = round((350 + n * 300) * 204 / 200), round(450 * 196 / 200)
        assert page.getpixel((cx, cy)) == 0
        assert page.getpixel((cx, cy + 400)) == 255
        assert page.getpixel(((cx + 600) % 1700, cy)) == 255


@pytest.mark.parametrize(("kind", "texts"), [("docx", ["First page", "Second page"]), ("odt", ["Uno", "Due", "Tre"])])
def test_office_documents_become_fax_pages(tmp_path: Path, kind: str, texts: list[str]) -> None:
    source = tmp_path / f"letter.{kind}"
    (write_docx if kind == "docx" else write_odt)(source, texts)
    doc = prepare(source, tmp_path / "out")
    assert (doc.kind, doc.pages) == (kind, len(texts))
    for page in _fax_pages(doc.tiff):
        top = page.crop((0, 0, 1728, 600))
        bottom = page.crop((0, 1200, 1728, 2200))
        assert top.getextrema()[0] == 0  # the text line is at the top of each page
        assert bottom.getextrema() == (255, 255)


def test_bad_documents_are_refused_before_dialling(tmp_path: Path) -> None:
    _pdf(tmp_path / "good.pdf", 1)
    with pikepdf.open(tmp_path / "good.pdf") as pdf:
        pdf.save(tmp_path / "locked.pdf", encryption=pikepdf.Encryption(user="secret", owner="owner"))
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\ngarbage\n")
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("plain text is not a fax document\n")
    write_docx(tmp_path / "whole.docx", ["x"])
    (tmp_path / "cut.docx").write_bytes((tmp_path / "whole.docx").read_bytes()[:200])
    expected = {
        "locked.pdf": "password-protected",
        "corrupt.pdf": "damaged PDF",
        "empty.pdf": "the file is empty",
        "notes.txt": "not a PDF, DOC, DOCX, ODT",
        "cut.docx": "damaged ZIP",
    }
    for name, reason in expected.items():
        with pytest.raises(DocumentRefused) as refused:
            prepare(tmp_path / name, tmp_path / "out")
        assert reason in refused.value.reason, (name, refused.value.reason)
        assert str(refused.value).startswith(f"{name}: ")
    assert not list((tmp_path / "out").glob("*.tif")) if (tmp_path / "out").exists() else True


def test_blank_pdf_is_refused(tmp_path: Path) -> None:
    Image.new("L", (1654, 2339), 255).save(tmp_path / "blank.pdf", resolution=200)
    with pytest.raises(DocumentRefused, match="every page is blank"):
        prepare(tmp_path / "blank.pdf", tmp_path / "out")


def test_prepared_pdf_crosses_a_fax_call_and_comes_back_as_pdf(tmp_path: Path) -> None:
    _pdf(tmp_path / "two.pdf", 2)
    doc = prepare(tmp_path / "two.pdf", tmp_path / "out")
    sender = AudioFaxSession(calling=True, tx_file=doc.tiff)
    receiver = AudioFaxSession(calling=False, rx_file=tmp_path / "rx.tif")
    run_g711(sender, receiver)
    assert receiver.result is not None and (receiver.result.ok, receiver.result.pages_rx) == (True, 2)
    assert received_pages(tmp_path / "rx.tif") == received_pages(doc.tiff)
    assert tiff_to_pdf(tmp_path / "rx.tif", tmp_path / "rx.pdf") == 2
    with pikepdf.open(tmp_path / "rx.pdf") as pdf:
        assert len(pdf.pages) == 2
        width, height = (float(v) for v in pdf.pages[0].mediabox[2:])
    assert abs(width - 1728 / 204 * 72) < 2 and abs(height - 2292 / 196 * 72) < 3  # A4: 595 x 842 pt


def test_standard_resolution_page_keeps_its_height_in_pdf(tmp_path: Path) -> None:
    make_document(tmp_path / "fine.tif", 1, height=1100)
    page = Image.open(tmp_path / "fine.tif")
    page.resize((1728, 550)).save(tmp_path / "std.tif", compression="group4", dpi=(204, 98))
    tiff_to_pdf(tmp_path / "fine.tif", tmp_path / "fine.pdf")
    tiff_to_pdf(tmp_path / "std.tif", tmp_path / "std.pdf")
    heights = []
    for name in ("fine.pdf", "std.pdf"):
        with pikepdf.open(tmp_path / name) as pdf:
            heights.append(float(pdf.pages[0].mediabox[3]))
    assert abs(heights[0] - heights[1]) < 1  # same paper, half the lines
