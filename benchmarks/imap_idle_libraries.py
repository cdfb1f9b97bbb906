"""Evidence for the Mail2Fax IMAP library choice (docs/dependencies.md):
IDLE notification latency and what each client does when Dovecot restarts
during IDLE, for IMAPClient and aioimaplib, against the lab Dovecot.

aioimaplib is not a project dependency (GPL-3.0-only); run this in a scratch
environment: ``uv venv /tmp/imaplibs && uv pip install --python
/tmp/imaplibs/bin/python aioimaplib imapclient`` then, as root, from the
checkout: ``/tmp/imaplibs/bin/python benchmarks/imap_idle_libraries.py``.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aioimaplib
import imapclient

from kalliope_tel.lab.dovecot import LabDovecot

BOX, PASSWORD = "box@x.example", "lab-only"
MSG = b"From: a@b.example\r\nTo: box@x.example\r\nSubject: 1\r\n\r\nx\r\n"


def imapclient_latency(lab: LabDovecot, ctx: ssl.SSLContext, n: int = 20) -> list[float]:
    c = imapclient.IMAPClient("127.0.0.1", port=lab.imaps_port, ssl=True, ssl_context=ctx, timeout=10)
    c.login(BOX, PASSWORD)
    c.select_folder("INBOX")
    lat = []
    for _ in range(n):
        c.idle()
        time.sleep(0.3)  # well inside IDLE: measure the notification, not the IDLE-start race
        t0 = time.perf_counter()
        lab.deliver(BOX, MSG)
        got = c.idle_check(timeout=5)
        lat.append((time.perf_counter() - t0) * 1000)
        c.idle_done()
        assert any(r[1] == b"EXISTS" for r in got), got
    c.logout()
    return lat


def imapclient_restart(lab: LabDovecot, ctx: ssl.SSLContext) -> str:
    c = imapclient.IMAPClient("127.0.0.1", port=lab.imaps_port, ssl=True, ssl_context=ctx, timeout=10)
    c.login(BOX, PASSWORD)
    c.select_folder("INBOX")
    c.idle()
    threading.Timer(0.5, lab.restart).start()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 40:
        r = c.idle_check(timeout=5)
        if r:
            return f"idle_check returned {r!r} after {time.perf_counter() - t0:.1f} s"
    return "nothing in 40 s"


async def aio_latency(lab: LabDovecot, ctx: ssl.SSLContext, n: int = 20) -> list[float]:
    c = aioimaplib.IMAP4_SSL("127.0.0.1", lab.imaps_port, ssl_context=ctx, timeout=10)
    await c.wait_hello_from_server()
    await c.login(BOX, PASSWORD)
    await c.select("INBOX")
    lat = []
    for _ in range(n):
        idle = await c.idle_start(timeout=30)
        await asyncio.sleep(0.3)
        t0 = time.perf_counter()
        await asyncio.to_thread(lab.deliver, BOX, MSG)
        while True:
            msg = await c.wait_server_push(timeout=5)
            if any(b"EXISTS" in m for m in msg if isinstance(m, bytes)):
                break
        lat.append((time.perf_counter() - t0) * 1000)
        c.idle_done()
        await asyncio.wait_for(idle, 5)
    await c.logout()
    return lat


async def aio_restart(lab: LabDovecot, ctx: ssl.SSLContext) -> str:
    c = aioimaplib.IMAP4_SSL("127.0.0.1", lab.imaps_port, ssl_context=ctx, timeout=10)
    await c.wait_hello_from_server()
    await c.login(BOX, PASSWORD)
    await c.select("INBOX")
    await c.idle_start(timeout=60)
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, lambda: loop.run_in_executor(None, lab.restart))
    t0, seen = time.perf_counter(), []
    try:
        while time.perf_counter() - t0 < 40:
            seen.append(await asyncio.wait_for(c.wait_server_push(timeout=60), 45))
    except Exception as exc:
        return f"pushes {seen!r}, then {type(exc).__name__} after {time.perf_counter() - t0:.1f} s"
    return f"pushes {seen!r}; no error in 40 s"


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="kt-imaplibs-"))
    lab = LabDovecot(folder)
    lab.start()
    lab.add_user(BOX, PASSWORD)
    ctx = ssl.create_default_context(cafile=str(lab.cert))
    try:

        def q(values: list[float]) -> str:
            ordered = sorted(values)
            return f"p50 {statistics.median(ordered):.0f} ms, max {ordered[-1]:.0f} ms"

        print("IMAPClient IDLE latency:", q(imapclient_latency(lab, ctx)))
        print("aioimaplib IDLE latency:", q(asyncio.run(aio_latency(lab, ctx))))
        print("IMAPClient, Dovecot restarted during IDLE:", imapclient_restart(lab, ctx))
        print("aioimaplib, Dovecot restarted during IDLE:", asyncio.run(aio_restart(lab, ctx)))
    finally:
        lab.remove()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
