"""Two of our fax sessions joined in memory (h11-style): V.17 with ECM, V.29
without, and T.38. A 5-page document must arrive with every page
pixel-identical, and both ends must report phase E OK with the page counts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kalliope_tel.fax.loopback import run_audio, run_t38
from kalliope_tel.fax.session import AudioFaxSession, FaxOptions, PhaseB, PhaseE, T38FaxSession
from kalliope_tel.fax.spandsp import V17, V29
from tests.fax_support import make_document, page_bytes, received_pages

pytestmark = pytest.mark.unit
PAGES = 5
MAX_SECONDS = 300


@pytest.mark.parametrize(
    ("mode", "ecm", "modems", "rate"),
    [("audio", True, V17, 14400), ("audio", False, V29, 9600), ("t38", True, V17 | V29, None)],
    ids=["v17-ecm", "v29-no-ecm", "t38"],
)
def test_five_pages_arrive_pixel_identical(tmp_path: Path, mode: str, ecm: bool, modems: int, rate: int | None) -> None:
    src, dst = tmp_path / "send.tif", tmp_path / "recv.tif"
    sent = make_document(src)
    cls = AudioFaxSession if mode == "audio" else T38FaxSession
    sender = cls(calling=True, options=FaxOptions("SENDER 0612345", ecm=ecm, modems=modems), tx_file=src)
    receiver = cls(calling=False, options=FaxOptions("RECEIVER 0698765", ecm=ecm, modems=modems), rx_file=dst)
    seconds = (
        run_audio(sender, receiver, max_seconds=MAX_SECONDS)
        if mode == "audio"
        else run_t38(sender, receiver, max_seconds=MAX_SECONDS)
    )  # type: ignore[arg-type]
    assert seconds < MAX_SECONDS
    assert sender.result is not None and receiver.result is not None
    assert (sender.result.ok, sender.result.text, sender.result.pages_tx) == (True, "OK", PAGES)
    assert (receiver.result.ok, receiver.result.pages_rx) == (True, PAGES)
    assert receiver.result.ecm is ecm
    if rate:
        assert receiver.result.bit_rate == rate
    events = receiver.events()
    negotiated = [e for e in events if isinstance(e, PhaseB)]
    assert negotiated and negotiated[0].remote_ident == "SENDER 0612345"
    assert sum(isinstance(e, PhaseE) for e in events) == 1
    got = received_pages(dst)
    assert len(got) == PAGES
    assert got == page_bytes(sent)  # every page, every pixel
    sender.close()
    receiver.close()


def test_missing_document_fails_in_phase_e_with_a_reason(tmp_path: Path) -> None:
    sender = AudioFaxSession(calling=True, tx_file=tmp_path / "nope.tif")
    receiver = AudioFaxSession(calling=False, rx_file=tmp_path / "recv.tif")
    run_audio(sender, receiver)
    assert sender.result is not None and not sender.result.ok
    assert "cannot be opened" in sender.result.text


def test_abi_fallback_sends_the_same_fax(tmp_path: Path) -> None:
    """Without a compiler the binding falls back to dlopen (ABI mode); the
    G.711 hot path then takes four calls instead of one, with the same result."""
    import subprocess
    import sys

    make_document(tmp_path / "send.tif", 1)
    code = (
        "import sys; from pathlib import Path\n"
        "from kalliope_tel.fax import spandsp\n"
        "from kalliope_tel.fax.loopback import run_g711\n"
        "from kalliope_tel.fax.session import AudioFaxSession\n"
        "d = Path(sys.argv[1])\n"
        "a = AudioFaxSession(calling=True, tx_file=d / 'send.tif')\n"
        "b = AudioFaxSession(calling=False, rx_file=d / 'recv.tif')\n"
        "run_g711(a, b)\n"
        "print(spandsp.MODE, a._exchange is None, b.result.ok, b.result.pages_rx)\n"
    )
    env = {**__import__("os").environ, "KALLIOPE_SPANDSP_ABI": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert done.stdout.strip().splitlines()[-1].split() == ["abi", "True", "True", "1"], done.stderr
    assert received_pages(tmp_path / "recv.tif") == received_pages(tmp_path / "send.tif")


def test_the_compiled_binding_is_in_use_where_a_compiler_exists() -> None:
    """The ABI (dlopen) fallback works but costs ~35 % more per frame; with a
    compiler on the machine, falling back silently would hide a build error."""
    import shutil

    from kalliope_tel.fax import spandsp

    if os.environ.get("KALLIOPE_SPANDSP_ABI"):
        pytest.skip("the ABI fallback was asked for")
    if shutil.which("cc") is None:
        assert spandsp.MODE == "abi"
    else:
        assert spandsp.MODE == "api"


def test_a_closed_session_frees_its_state_once() -> None:
    from kalliope_tel.fax.session import live_sessions

    before = live_sessions()
    session = AudioFaxSession(calling=True)
    assert live_sessions() == before + 1
    session.close()
    session.close()  # idempotent: freed once
    session.hang_up()  # after close: no use of freed memory
    assert live_sessions() == before
