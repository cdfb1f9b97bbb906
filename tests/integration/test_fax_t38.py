"""T.38 on the wire: a second lab Asterisk sends a fax with SendFax over PJSIP,
switching the call to T.38 (UDPTL); the first Asterisk's T.38 gateway turns it
into audio towards our engine (externalMedia). The pages must arrive intact and
the sender must report that it faxed in T.38 mode.

Asterisk 22's gateway sometimes stops producing audio right at the switch to
T.38 (compare asterisk/asterisk#2046): seen in about half the calls here,
while the same gateway in front of Asterisk's own ReceiveFax went 6 for 6.
The gateway's audio comes from a generator it starts on its audio peer, and
Asterisk drops a channel's generator when a voice frame is written to that
channel, so a last frame of the far end's audio that crosses the bridge
just after the switch would stop it for good: that fits, but is not proven.
Our side sees it plainly: Asterisk's RTP to us stops at the switch (~150
frames, 3 s) and never resumes, and our engine ends the call as one-way
media after 3 s of silence instead of waiting out T.30's retries. On a loaded
CI machine a call through the gateway also failed once in T.30 itself
("Unexpected message received", after phase B). So the test places up to
eight calls; a failed one must have failed cleanly (no pages, a reason, the
sender failed too, in T.38 mode), and one must deliver the document."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from kalliope_tel.ari_apps.fax import APP_NAME, STALLED, FaxApplication, FaxCallResult
from kalliope_tel.asterisk.apply import write_files
from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.lab.instance import LabInstance, LabState
from tests.conftest import LAB_ROOT
from tests.fax_support import make_document, page_bytes, received_pages
from tests.helpers import ari_runtime
from tests.integration.test_fax_lab import asterisk_result, lab_fax_dir

pytestmark = [pytest.mark.integration, pytest.mark.realtime, pytest.mark.asterisk, pytest.mark.timeout(400)]
PAGES = 2


def _peer(name: str, other_port: int, context: str) -> str:
    return f"""
[{name}]
type = endpoint
context = {context}
disallow = all
allow = ulaw
aors = {name}
direct_media = no
t38_udptl = yes
t38_udptl_ec = redundancy
t38_udptl_maxdatagram = 400

[{name}]
type = aor
contact = sip:127.0.0.1:{other_port}

[{name}]
type = identify
endpoint = {name}
match = 127.0.0.1
"""


@pytest.fixture
def lab_pair() -> tuple[LabInstance, LabState, LabInstance, LabState]:
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:4]}"
    a, b = LabInstance(LAB_ROOT, f"pytest-t38a-{tag}"), LabInstance(LAB_ROOT, f"pytest-t38b-{tag}")
    try:
        state_a, state_b = a.start(), b.start()
        write_files(a.dir / "etc", {"kalliope/pjsip_t38.conf": _peer("t38peer", state_b.sip_port, "kt-lab-t38-in")})
        write_files(b.dir / "etc", {"kalliope/pjsip_t38.conf": _peer("t38peer", state_a.sip_port, "default")})
        for lab in (a, b):
            lab.cli("module reload res_pjsip.so")
            if os.environ.get("KT_KEEP_LABS"):
                lab.cli("core set verbose 5")
                lab.cli("pjsip set logger on")
                lab.cli("fax set debug on")
                lab.cli("udptl set debug on")
                lab.cli("logger add channel fax.log notice,warning,error,verbose,debug,dtmf")
                lab.cli("core set debug 3")
        yield a, state_a, b, state_b
    finally:
        if not os.environ.get("KT_KEEP_LABS"):
            a.purge()
            b.purge()


# Faults of Asterisk's T.38 gateway seen on this lab, each with its signature:
# the gateway stops producing audio at the T.38 switch (compare
# asterisk/asterisk#2046; detected by our one-way-media check), and under CI
# load a T.30 exchange after phase B that spandsp ends as below (T.30 error
# 13). That one was first seen before any page; CI on 2026-12-04 saw it after
# both pages (phase E, with 0 frames lost, late or resynced on our side):
# the pages received before it are kept, as for any failed reception.
UNEXPECTED = "Unexpected message received"
T30_ERR_UNEXPECTED = 13
EXCUSED_FAULTS = {
    STALLED: "gateway stall, asterisk/asterisk#2046",
    UNEXPECTED: "T.30 after phase B under load",
}


async def _one_call(
    lab_b: LabInstance, state_b: LabState, app: FaxApplication, results: list[FaxCallResult], document: Path
) -> tuple[FaxCallResult, list[str]]:
    tag = uuid.uuid4().hex[:8]
    before = len(results)
    async with AriClient(state_b.ari_url, state_b.ari_username, state_b.ari_password, apps=["t38-sender"]) as b:
        await b.originate(
            "PJSIP/100@t38peer",
            context="fax-sender",
            extension="s",
            priority=1,
            variables={"KT_FAXFILE": str(document), "KT_FAXTAG": tag, "KT_FAXSTATION": "T38 SENDER"},
        )
    for _ in range(900):
        if len(results) > before:
            break
        await asyncio.sleep(0.1)
    assert await app.wait_idle(10)
    assert len(results) > before, "the call never reached our engine, or never finished"
    return results[-1], await asterisk_result(lab_b, tag)


async def test_t38_from_a_second_asterisk_reaches_our_engine(
    lab_pair: tuple[LabInstance, LabState, LabInstance, LabState], tmp_path: Path
) -> None:
    lab_a, state_a, lab_b, state_b = lab_pair
    host_dir, inner_dir = lab_fax_dir(lab_b)
    sent = make_document(host_dir / "t38.tif", PAGES)
    results: list[FaxCallResult] = []
    attempts: list[tuple[FaxCallResult, list[str]]] = []
    async with ari_runtime(state_a) as runtime:
        app = FaxApplication(runtime, spool_dir=tmp_path, on_result=results.append, stall_after=3.0)
        runtime.register(APP_NAME, app)
        lab_a.cli(f"dialplan set global KT_FAX_ARI_APP {runtime.client.apps[0]}")
        for _ in range(8):
            attempts.append(await _one_call(lab_b, state_b, app, results, inner_dir / "t38.tif"))
            if attempts[-1][0].ok:
                break
    *stalled, (got, sender) = attempts
    excused: dict[str, int] = {}
    for result, far in stalled:
        # Only the two documented faults are excused, each by its signature;
        # anything else that broke a call fails the test.
        assert not result.ok
        assert result.reason in EXCUSED_FAULTS, f"not a documented fault: {result.reason!r}"
        if result.reason == STALLED:  # the gateway's stall: audio stopped at the switch
            assert result.pages == 0 and result.rx_file is None
            assert result.rtp_received is not None and result.rtp_received < 400
        else:  # T.30 out of step after phase B: spandsp's own error code, pages so far kept
            assert result.phase_e is not None and result.phase_e.code == T30_ERR_UNEXPECTED
            assert result.pages <= PAGES and (result.rx_file is not None) == (result.pages > 0)
        assert far[0] == "FAILED" and far[6] == "T38"
        excused[result.reason] = excused.get(result.reason, 0) + 1
    print(f"T.38 calls placed: {len(attempts)}; excused failures: {excused}")
    assert (got.ok, got.pages, got.remote_ident) == (True, PAGES, "T38 SENDER"), attempts
    assert got.rx_file is not None and received_pages(got.rx_file) == page_bytes(sent)
    status, pages, _error, _rate, _remote, _ecm, mode = sender
    assert (status, pages, mode) == ("SUCCESS", str(PAGES), "T38")  # the wire carried T.38
