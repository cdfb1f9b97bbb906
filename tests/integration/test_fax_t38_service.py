"""T.38 that delivers: faxes from a second lab Asterisk over PJSIP with
T.38 (UDPTL) to a fax instance. The instance's dialplan hands T.38-capable
callers to Asterisk's own res_fax (ReceiveFax terminates T.38; no gateway,
whose stall lost about half the calls, asterisk/asterisk#2046), and the
fax-admit/fax-done handlers give the pages to the same fax service as the
engine's receptions: register, PDF, mails. All but one must arrive (10 in
the suite, 50 in the soak), each checked page for page."""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from kalliope_tel.asterisk.apply import write_files
from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.lab.instance import LabInstance, LabState
from tests.fax_service_support import configure_office, nodes_ready, register_rows, smtp_server, until
from tests.fax_support import make_document
from tests.helpers import ServeNode, apply_lab_config, serve_env
from tests.integration.test_fax_lab import lab_fax_dir
from tests.integration.test_fax_t38 import _peer, lab_pair  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.realtime, pytest.mark.asterisk, pytest.mark.timeout(900)]
# The suite sends 10; the soak of 50 is KT_T38_CALLS=50 (out of the suite's 25 minutes).
CALLS, AT_ONCE, PAGES = int(os.environ.get("KT_T38_CALLS", "10")), 10, 2


async def _send(state_b: LabState, document: Path, tag: str) -> None:
    async with AriClient(state_b.ari_url, state_b.ari_username, state_b.ari_password, apps=["t38-sender"]) as b:
        await b.originate(
            "PJSIP/700@t38peer",
            context="fax-sender",
            extension="s",
            priority=1,
            caller_id="0557000000",
            variables={"KT_FAXFILE": str(document), "KT_FAXTAG": tag, "KT_FAXSTATION": "T38 SENDER"},
        )


def _sender_result(lab: LabInstance, tag: str) -> list[str] | None:
    out = lab.cli(f"database get ktlab/fax {tag}", check=False)
    return out.split(":", 1)[1].strip().split("|") if out.startswith("Value:") else None


async def test_t38_faxes_reach_the_fax_service(
    lab_pair: tuple[LabInstance, LabState, LabInstance, LabState],  # noqa: F811
    tmp_path: Path,
) -> None:
    from tests.conftest import kalliope

    lab_a, state_a, lab_b, state_b = lab_pair
    url = f"sqlite:///{tmp_path / 'kt.sqlite3'}"
    assert kalliope("db", "upgrade", env={"KALLIOPE_DATABASE_URL": url}).returncode == 0
    office = configure_office(url, tmp_path / "data")
    container = office.container()
    try:
        await apply_lab_config(container, lab_a)
    finally:
        container.close()
    # The far Asterisk is a trunk of the default PBX: its calls enter the PBX's dialplan.
    write_files(
        lab_a.dir / "etc", {"kalliope/pjsip_t38.conf": _peer("t38peer", state_b.sip_port, "kt-default-from-trunk")}
    )
    lab_a.cli("module reload res_pjsip.so")
    host_dir, inner_dir = lab_fax_dir(lab_b)
    sent = make_document(host_dir / "t38.tif", PAGES, height=1400)
    expected = [p.convert("L").tobytes() for p in sent]
    tags = [f"t38-{n}-{uuid.uuid4().hex[:6]}" for n in range(CALLS)]
    with smtp_server() as (mail, port):
        node = f"t38-{uuid.uuid4().hex[:4]}"
        env = serve_env(
            state_a,
            url,
            KALLIOPE_DATA_DIR=str(office.data_dir),
            KALLIOPE_SMTP_URL=f"smtp://127.0.0.1:{port}",
            KALLIOPE_FAX_TICK_SECONDS="0.5",
            KALLIOPE_NODE_NAME=node,
        )
        serve = ServeNode(env)
        try:
            await nodes_ready(office, [node])
            for first in range(0, CALLS, AT_ONCE):
                batch = tags[first : first + AT_ONCE]
                for tag in batch:
                    await _send(state_b, inner_dir / "t38.tif", tag)
                await until(
                    lambda b=batch: all(_sender_result(lab_b, t) for t in b), 240 if CALLS > 1 else 60, "batch finished"
                )
            await until(lambda: len(register_rows(office)) >= CALLS, 60, "every call in the register")
            # One mail per received fax: wait for all of them (under load the
            # last ones leave a few ticks after the register row).
            received = sum(1 for r in register_rows(office) if r["state"] == "received")
            await asyncio.to_thread(
                mail.wait, lambda: len(mail.to("bob@example.com")) >= max(received, 1), 120, "mails"
            )
        finally:
            output = serve.finish(60)
            if os.environ.get("KT_KEEP_LABS"):
                print(output[-6000:])
    senders = [_sender_result(lab_b, t) for t in tags]
    rows = register_rows(office)
    delivered = [r for r in rows if r["state"] == "received"]
    failures = [(r["reason"], r["pages"]) for r in rows if r["state"] != "received"]
    print(f"T.38 through res_fax: {len(delivered)}/{CALLS} delivered; failures: {failures}")
    assert len(rows) == CALLS, output[-3000:]
    assert len(delivered) >= CALLS - 1, (failures, senders)
    assert {r["media"] for r in rows} == {"asterisk"}
    assert all(s is not None and s[6] == "T38" for s in senders), senders  # the wire carried T.38
    # Pages checked: every delivered fax's PDF holds the sent pixels.
    by_file = {name: data for rcpt, m in mail.messages if "bob@example.com" in rcpt for name, data in _attached(m)}
    for row in delivered:
        with pikepdf.open(io.BytesIO(by_file[row["file"]])) as pdf:
            assert len(pdf.pages) == PAGES
            pages = [_pdf_page_pixels(pdf, n) for n in range(PAGES)]
        assert pages == expected, f"pages of {row['id']} differ"
    assert os.path.isdir(lab_a.dir / "spool" / "kalliope-fax")
    assert list((lab_a.dir / "spool" / "kalliope-fax").glob("*.tif")) == []  # handed over and removed


def _attached(msg):  # type: ignore[no-untyped-def]
    from tests.fax_service_support import attachments

    return attachments(msg)


def _pdf_page_pixels(pdf: pikepdf.Pdf, n: int) -> bytes:
    """The page's image as 8-bit pixels (img2pdf embeds the fax page as is)."""
    from pikepdf import PdfImage

    (image,) = pdf.pages[n].get_images().values()
    pil: Image.Image = PdfImage(image).as_pil_image()
    return pil.convert("L").tobytes()
