"""What the ARI outbound websockets tests share: the lab Asterisk's outbound
configuration (rendered by the project's own renderer), HAProxy on loopback
in front of serve nodes, and a driver that keeps N lab fax machines calling
the office's fax instance."""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kalliope_tel.asterisk.apply import write_files
from kalliope_tel.asterisk.ari.runtime import AriRuntime
from kalliope_tel.asterisk.outbound_conf import render_outbound
from kalliope_tel.config import Settings
from kalliope_tel.lab.instance import LabInstance
from tests.fax_service_support import T30_UNDER_LOAD

HAPROXY = "/usr/sbin/haproxy"
# The shared Stasis app of these tests: other tests on the same lab keep
# 'kalliope' in inbound mode (an app is served by one mode only).
OUTBOUND_APP = "kalliope-ob"


def apply_outbound(lab: LabInstance, ari_user: str, uri: str | None, password: str) -> str:
    """Render Asterisk's side with the project's renderer and reload res_ari;
    ``uri`` None turns outbound mode off again. Returns 'ari show outbound-websockets'."""
    if uri is None:
        settings = Settings(ari_app=OUTBOUND_APP)
    else:
        settings = Settings(
            ari_app=OUTBOUND_APP,
            ari_outbound_bind="127.0.0.1:1",  # only its presence counts here: Asterisk connects to the uri
            ari_outbound_uri=uri,
            ari_outbound_password=password,  # type: ignore[arg-type]
        )
    write_files(lab.dir / "etc", render_outbound(settings, ari_user))
    lab.cli("module reload res_ari.so")
    return lab.cli("ari show outbound-websockets")


@dataclass
class HAProxy:
    """Debian's HAProxy on loopback: round robin over the nodes' outbound
    listeners, health-checked on their GET /health every 0.5 s."""

    port: int
    backends: dict[str, int]
    proc: subprocess.Popen[bytes] | None = None
    _dir: tempfile.TemporaryDirectory[str] = field(default_factory=tempfile.TemporaryDirectory)

    def config(self) -> str:
        servers = "\n".join(
            f"  server {name} 127.0.0.1:{port} check inter 500ms fall 2 rise 2" for name, port in self.backends.items()
        )
        return f"""global
  maxconn 2000
defaults
  mode http
  timeout connect 1s
  timeout client 1h
  timeout server 2s
  timeout tunnel 1h
  retries 3
  option redispatch
frontend ari
  bind 127.0.0.1:{self.port}
  default_backend nodes
backend nodes
  balance roundrobin
  option httpchk GET /health
{servers}
"""

    def start(self) -> None:
        cfg = Path(self._dir.name) / "haproxy.cfg"
        cfg.write_text(self.config())
        check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = Path(self._dir.name) / "haproxy.log"
        self.proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(cfg)], stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )

    def stop(self) -> str:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        out = self.log.read_text(errors="replace") if hasattr(self, "log") else ""
        self._dir.cleanup()
        return out


@contextmanager
def haproxy(port: int, backends: dict[str, int]) -> Iterator[HAProxy]:
    proxy = HAProxy(port, backends)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@dataclass
class FaxCalls:
    """Lab fax machines (Asterisk's SendFax) calling the office's instance
    (700 on the trunk), ``parallel`` at a time; each call's caller number
    (05000000NN) finds it in the register, its tag its sender's result."""

    runtime: AriRuntime
    lab: LabInstance
    document: str  # the TIFF's path as the lab sees it
    app: str
    prefix: str = field(default_factory=lambda: f"ob{int(time.time() * 1000) % 10**8}")
    started_at: dict[int, float] = field(default_factory=dict)  # when each call started (epoch seconds)
    results: dict[int, list[str]] = field(default_factory=dict)
    channels: dict[int, str] = field(default_factory=dict)  # the sender's channel (Local ;1)

    @staticmethod
    def caller(index: int) -> str:
        return f"05000{index:05d}"

    async def start(self, index: int) -> None:
        self.started_at[index] = time.time()
        channel = await self.runtime.client.originate(
            "Local/700@kt-default-from-trunk",
            context="fax-sender",
            extension="s",
            priority=1,
            caller_id=self.caller(index),
            variables={
                "KT_FAXFILE": self.document,
                "KT_FAXTAG": f"{self.prefix}-{index}",
                "KT_FAXSTATION": f"LAB {index}",
                # Local channels copy their variables to the ;2 half, where
                # the generated dialplan reads the app to enter.
                "KALLIOPE_ARI_APP": self.app,
            },
        )
        self.channels[index] = channel.id

    @staticmethod
    def index_of(number: str) -> int:
        return int(number[5:])

    def excused(self, index: int, reason: str) -> bool:
        """A call our side did not receive is excused only for spandsp's
        T.30 fault under load: in our reason, or, where our side saw the far
        end hang up (the lab's sender gave up), in that sender's own result
        for the call. (Seen in CI: 1 of 100, "the far end hung up (left
        Stasis (hung up))".)"""
        if T30_UNDER_LOAD.search(reason):
            return True
        sender = self.results.get(index, [])
        return (
            reason.startswith("the far end hung up")
            and len(sender) > 2
            and sender[0] == "FAILED"
            and bool(T30_UNDER_LOAD.search(sender[2]))
        )

    async def poll(self) -> None:
        """Senders' results so far, by call index (STATUS|PAGES|ERROR|...).
        A call hung up before it was answered never runs the sender (nor its
        hang-up handler): once its channel is gone it counts as UNANSWERED."""
        present = {c.id for c in await self.runtime.client.list_channels()}
        out = await asyncio.to_thread(self.lab.cli, "database show ktlab/fax", check=False)
        for line in out.splitlines():
            match = re.match(rf"/ktlab/fax/{self.prefix}-(\d+)\s*:\s*(.*)$", line.strip())
            if match:
                self.results[int(match.group(1))] = match.group(2).strip().split("|")
        for index, channel in self.channels.items():
            if index not in self.results and channel not in present:
                self.results[index] = ["UNANSWERED", "0", "ended before the fax machine answered"]

    async def run(self, total: int, parallel: int, *, after_start: dict[int, object] | None = None) -> None:
        """Keep ``parallel`` calls going until ``total`` have ended (each
        sender's hang-up handler leaves its result). ``after_start``: index ->
        callable run once that call has started (the kill)."""
        index = len(self.started_at)  # calls started by hand before: 0..index-1
        deadline = time.monotonic() + 60 + total * 3
        while len(self.results) < total:
            missing = sorted(set(self.started_at) - set(self.results))
            assert time.monotonic() < deadline, f"calls still running: {missing}"
            running = len(self.started_at) - len(self.results)
            while index < total and running < parallel:
                await self.start(index)
                if after_start and index in after_start:
                    action = after_start[index]
                    assert callable(action)
                    action()
                index += 1
                running += 1
            await asyncio.sleep(0.5)
            await self.poll()
