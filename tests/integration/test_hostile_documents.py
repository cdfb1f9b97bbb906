"""The hostile corpus: documents built to hurt the converter, each refused
with its reason and nothing left behind; the jail that LibreOffice and
Ghostscript run in; and the converter process, its limits and its queue."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from kalliope_tel import sandbox
from kalliope_tel.fax import conversion
from kalliope_tel.fax.conversion import ConversionQueue, Converter, ConverterBusy
from kalliope_tel.fax.documents import DocumentRefused, prepare
from kalliope_tel.sandbox import Limits
from tests.office_docs import write_docx, write_docx_includetext, write_odt, write_odt_linked
from tests.web_support import write_pdf

pytestmark = pytest.mark.integration
MARKER = "KT-SECRET-7f3a9c"


@pytest.fixture
def scratch_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where the jails' scratch folders go, watched: nothing may stay in it."""
    root = Path(tempfile.mkdtemp(prefix="kt-test-jails-", dir="/tmp"))
    root.chmod(0o711)
    monkeypatch.setattr(sandbox, "JAIL_BASE", root)
    yield root
    left = list(root.iterdir())
    shutil.rmtree(root)
    assert left == [], "a conversion left files behind"


def _zip_bomb_odt(path: Path) -> None:
    """65 KB on disk; its ``mimetype`` member unpacks to 64 MiB of padding."""
    write_odt(path, ["Bomb"])
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist() if n != "mimetype"}
    padding = b"application/vnd.oasis.opendocument.text" + b" " * (64 << 20)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", padding, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        for name, data in parts.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)


def _zip_bomb_docx(path: Path) -> None:
    write_docx(path, ["Bomb"])
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    body = parts["word/document.xml"].decode().replace("<w:body>", "<w:body>" + "<!--" + " " * (200 << 20) + "-->")
    parts["word/document.xml"] = body.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in parts.items():
            z.writestr(name, data)


def _tall_png(path: Path) -> None:
    Image.new("L", (30, 1_000_000), 0).save(path, optimize=True)


def _ten_thousand_pages(path: Path) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    page = pdf.pages[0]
    for _ in range(9_999):
        pdf.pages.append(page)
    pdf.save(path)


CORPUS = {
    "bomb.odt": (_zip_bomb_odt, "a compressed bomb"),
    "bomb.docx": (_zip_bomb_docx, "a compressed bomb"),
    "tall.png": (_tall_png, "fax pages: more than the 200"),
    "huge.pdf": (_ten_thousand_pages, "10000 pages: more than the 200"),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_hostile_corpus_is_refused_with_its_reason(name: str, tmp_path: Path, scratch_root: Path) -> None:
    make, reason = CORPUS[name]
    source = tmp_path / name
    make(source)
    assert source.stat().st_size < 2_000_000  # small on disk: the harm is in what it unpacks to
    data_dir = tmp_path / "data"
    converter = Converter(ConversionQueue(1, 0), Limits(memory_bytes=512 << 20, cpu_seconds=60, wall_seconds=60))
    with pytest.raises(DocumentRefused) as refused:
        converter.prepare(data_dir, [source])
    assert reason in refused.value.reason, refused.value.reason
    assert refused.value.name == name
    assert list((data_dir / "fax" / "work").iterdir()) == []


def test_a_zip_bomb_is_refused_before_anything_unpacks_it(tmp_path: Path) -> None:
    """In this process, with its memory watched: the directory is read, the
    64 MiB member never is."""
    import tracemalloc

    _zip_bomb_odt(tmp_path / "bomb.odt")
    tracemalloc.start()
    try:
        with pytest.raises(DocumentRefused, match="compressed bomb"):
            prepare(tmp_path / "bomb.odt", tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak} bytes allocated while refusing"


def test_a_long_image_becomes_pages_and_a_photo_stays_one(tmp_path: Path) -> None:
    """The cap counts pages, so a tall receipt is sliced into A4 pages and a
    photographed letter (a little taller than A4) stays one page."""
    from PIL import ImageDraw

    receipt = Image.new("L", (1728, 2292 * 3), 255)
    ImageDraw.Draw(receipt).rectangle([100, 100, 1600, 2292 * 3 - 100], outline=0, width=20)
    receipt.save(tmp_path / "receipt.png", dpi=(204, 196))
    Image.new("L", (3000, 4300), 0).save(tmp_path / "photo.png", dpi=(300, 300))
    assert prepare(tmp_path / "receipt.png", tmp_path / "a").pages == 3
    assert prepare(tmp_path / "photo.png", tmp_path / "b").pages == 1


def _text_of(pdf: Path) -> str:
    done = subprocess.run(["gs", "-q", "-dSAFER", "-sDEVICE=txtwrite", "-o", "-", str(pdf)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


@pytest.mark.parametrize("kind", ["odt", "docx"])
def test_a_document_linked_to_a_local_file_does_not_carry_it(kind: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{MARKER}\n")
    source = tmp_path / f"linked.{kind}"
    (write_odt_linked if kind == "odt" else write_docx_includetext)(source, secret)
    document = prepare(source, tmp_path / "out")
    produced = list((tmp_path / "out").glob("office-*/*.pdf"))
    assert len(produced) == 1
    text = _text_of(produced[0])
    assert "letter" in text and MARKER not in text
    # The pages sent: the same as those of a document linked to nothing.
    control = tmp_path / f"control.{kind}"
    (write_odt_linked if kind == "odt" else write_docx_includetext)(control, tmp_path / "absent.txt")
    other = prepare(control, tmp_path / "control-out")
    assert _pages(document.tiff) == _pages(other.tiff)


def _pages(tiff: Path) -> list[bytes]:
    with Image.open(tiff) as image:
        out = []
        for n in range(image.n_frames):
            image.seek(n)
            out.append(image.tobytes())
        return out


def test_the_jail_sees_no_files_of_ours_and_no_network(tmp_path: Path) -> None:
    """What LibreOffice and Ghostscript could reach, asked of a shell in the
    same jail; each check is made outside it too, where it succeeds."""
    secret = tmp_path / "secret.txt"
    secret.write_text(MARKER)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    threading.Thread(target=lambda: listener.accept(), daemon=True).start()
    probe = (
        f"cat {secret}; cat /etc/shadow; cat /proc/1/environ; echo; ls /root /home /work; id -u; "
        f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED"
    )
    outside = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=False)
    assert MARKER in outside.stdout and "CONNECTED" in outside.stdout
    inside = subprocess.run(sandbox.jailed(["bash", "-c", probe]), capture_output=True, text=True, check=False)
    assert MARKER not in inside.stdout and "CONNECTED" not in inside.stdout
    assert "No such file" in inside.stderr
    user = sandbox.jail_user()
    if user is not None:  # as root: the jail's user is not
        assert inside.stdout.split()[-1] == str(user[0]) and user[0] != 0
    listener.close()


def test_the_converter_process_refuses_over_its_time_and_cleans_up(tmp_path: Path, scratch_root: Path) -> None:
    write_docx(tmp_path / "slow.docx", ["takes LibreOffice more than a tenth of a second"])
    converter = Converter(ConversionQueue(1, 0), Limits(wall_seconds=0.3))
    with pytest.raises(DocumentRefused, match=r"converting took longer than 0.3 s"):
        converter.prepare(tmp_path / "data", [tmp_path / "slow.docx"])
    assert list((tmp_path / "data" / "fax" / "work").iterdir()) == []


def test_the_converter_process_makes_the_pages_and_reports_progress(tmp_path: Path, scratch_root: Path) -> None:
    write_pdf(tmp_path / "one.pdf", 1)
    write_odt(tmp_path / "two.odt", ["Uno", "Due"])
    seen: list[tuple[str, int, int]] = []
    converter = conversion.converter()
    prepared = converter.prepare(tmp_path / "data", [tmp_path / "one.pdf", tmp_path / "two.odt"],
                                 progress=lambda *step: seen.append(step))  # fmt: skip
    assert prepared.pages == 3 and prepared.tiff.is_file() and prepared.pdf.is_file()
    assert seen == [("one.pdf", 1, 2), ("two.odt", 2, 2)]


def test_a_full_queue_refuses_at_once_and_a_mail_waits() -> None:
    queue = ConversionQueue(running=1, waiting=1)
    release = threading.Event()
    got: list[str] = []

    def convert(name: str, wait: bool) -> None:
        with queue.slot(wait=wait):
            got.append(name)
            release.wait(10)

    running = threading.Thread(target=convert, args=("running", False), daemon=True)
    queued = threading.Thread(target=convert, args=("queued", False), daemon=True)
    running.start()
    queued.start()
    for _ in range(500):
        if queue.admitted == 2:
            break
        time.sleep(0.01)
    assert (queue.admitted, got) == (2, ["running"])
    with pytest.raises(ConverterBusy, match="try again in a minute"), queue.slot(wait=False):
        pass  # a third upload: refused at once
    mail = threading.Thread(target=convert, args=("mail", True), daemon=True)
    mail.start()  # a mail is not refused: it waits its turn
    time.sleep(0.1)
    assert queue.admitted == 3
    release.set()
    for thread in (running, queued, mail):
        thread.join(5)
    assert sorted(got) == ["mail", "queued", "running"] and queue.admitted == 0
