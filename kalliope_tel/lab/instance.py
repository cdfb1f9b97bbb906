"""One lab Asterisk: render its configuration, start, stop and inspect it.

Theory of operation: the chroot (built once by scripts/build-asterisk-chroot.sh)
holds Asterisk. Each lab *instance* is a directory inside the chroot,
``/srv/kalliope-lab/NAME``, with its own etc/, run/, log/, spool/ and astdb, so
several instances (a developer's, each test run's, a second "far end" for SIP)
run side by side. ``state.json`` in that directory records the ports and
credentials chosen at start, and the pid of the Asterisk process, which is the
only process ``stop`` ever signals.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kalliope_tel.asterisk.realtime_conf import realtime_files
from kalliope_tel.lab.conffile import set_option
from kalliope_tel.lab.ports import free_fixed_tcp_port, free_tcp_port, free_udp_range
from kalliope_tel.resources import asterisk_conf_dir, static_dialplan_file

INSTANCES_DIR = "srv/kalliope-lab"
ASTERISK_BIN = "/usr/sbin/asterisk"
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-asterisk-chroot.sh"
# Modules whose absence means the lab cannot do its job.
REQUIRED_MODULES = ("res_ari.so", "res_agi.so", "chan_rtp.so", "res_fax_spandsp.so")
# Stock files the project does not ship but Asterisk wants (tones for busy and
# ringing, CDR/CEL engines, ...): taken from the chroot's Debian samples.
STOCK_CONF_FILES = (
    "indications.conf",
    "ccss.conf",
    "acl.conf",
    "cel.conf",
    "codecs.conf",
    "features.conf",
    "musiconhold.conf",
    "pjproject.conf",
    "pjsip_wizard.conf",
    "geolocation.conf",
    "stir_shaken.conf",
    "res_config_sqlite3.conf",
)


class LabError(Exception):
    """The lab could not be built, started, reached or stopped."""


LAB_AMI_READ = "system,call,log,verbose,agent,user,config,dtmf,reporting,cdr,dialplan"
LAB_AMI_WRITE = "system,call,originate,reporting,command,config"


@dataclass(frozen=True)
class LabState:
    name: str
    pid: int
    http_port: int
    ami_port: int
    sip_port: int
    agi_port: int
    rtp_start: int
    rtp_end: int
    ari_username: str
    ari_password: str
    ami_username: str
    ami_password: str
    started_at: float
    # Where serve answers this lab's realtime questions, and the password
    # Asterisk gives (pjsip_accounts = realtime); 0: a state from before.
    realtime_port: int = 0
    realtime_password: str = ""

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/ari"

    @property
    def ami_url(self) -> str:
        return f"tcp://127.0.0.1:{self.ami_port}"

    @property
    def agi_bind(self) -> str:
        return f"127.0.0.1:{self.agi_port}"

    @property
    def realtime_bind(self) -> str:
        return f"127.0.0.1:{self.realtime_port}"


@dataclass(frozen=True)
class ModuleStatus:
    name: str
    description: str
    running: bool


@dataclass(frozen=True)
class LabStatus:
    running: bool
    version: str
    modules: tuple[ModuleStatus, ...]
    state: LabState | None

    @property
    def missing_modules(self) -> list[str]:
        running = {m.name for m in self.modules if m.running}
        return [m for m in REQUIRED_MODULES if m not in running]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        done = 0
    return done == 0


class LabInstance:
    """A named lab Asterisk inside the chroot at ``root``."""

    def __init__(self, root: Path, name: str = "default") -> None:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise LabError(f"lab name {name!r}: use letters, digits, - and _")
        self.root = root
        self.name = name
        self.inner = Path("/") / INSTANCES_DIR / name  # path as Asterisk sees it
        self.dir = root / INSTANCES_DIR / name  # same path from the host
        self.state_file = self.dir / "state.json"

    # -- chroot ------------------------------------------------------------
    def ensure_chroot(self) -> None:
        if (self.root / "usr/sbin/asterisk").exists() and (self.root / ".kalliope-lab-ready").exists():
            return
        if not BUILD_SCRIPT.is_file():
            raise LabError(f"lab chroot missing at {self.root} and no build script to make it")
        result = subprocess.run(["bash", str(BUILD_SCRIPT), str(self.root)], check=False)
        if result.returncode != 0:
            raise LabError("building the Asterisk chroot failed (see messages above)")

    # -- state -------------------------------------------------------------
    def read_state(self) -> LabState | None:
        try:
            return LabState(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _write_state(self, state: LabState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.chmod(0o600)  # holds the lab's passwords
        tmp.replace(self.state_file)

    def is_running(self) -> bool:
        state = self.read_state()
        return state is not None and _pid_alive(state.pid)

    # -- configuration -----------------------------------------------------
    def render(self, state: LabState) -> None:
        """Write etc/ from asterisk-conf/ with the lab's ports and passwords."""
        etc = self.dir / "etc"
        if etc.exists():
            shutil.rmtree(etc)
        etc.mkdir(parents=True)
        # spool/kalliope-fax: res_fax receptions for the fax service; spool/faxnet: the lab's fax machines.
        for sub in (
            "run",
            "log",
            "log/cdr-csv",
            "log/cdr-custom",
            "spool",
            "spool/kalliope-fax",
            "spool/faxnet",
            "lib",
            "keys",
        ):
            (self.dir / sub).mkdir(exist_ok=True)
        stock = self.root / "etc/asterisk"
        for name in STOCK_CONF_FILES:
            if (stock / name).is_file():
                shutil.copy(stock / name, etc / name)
        src = asterisk_conf_dir()
        for conf in sorted(src.glob("*.conf")):
            (etc / conf.name).write_text(conf.read_text())
        shutil.copy(static_dialplan_file(), etc / "extensions_kalliope.conf")
        for conf in sorted((src / "lab").glob("*.conf")):
            (etc / conf.name).write_text(conf.read_text())

        def patch(filename: str, section: str, key: str, value: str) -> None:
            path = etc / filename
            path.write_text(set_option(path.read_text(), section, key, value))

        patch("http.conf", "general", "bindaddr", "127.0.0.1")
        patch("http.conf", "general", "bindport", str(state.http_port))
        patch("ari.conf", state.ari_username, "password", state.ari_password)
        patch("manager.conf", "general", "bindaddr", "127.0.0.1")
        patch("manager.conf", "general", "port", str(state.ami_port))
        patch("manager.conf", state.ami_username, "secret", state.ami_password)
        # The sample grants production's needs only; the lab's tests also
        # originate, watch DTMF and CDR events through AMI.
        patch("manager.conf", state.ami_username, "read", LAB_AMI_READ)
        patch("manager.conf", state.ami_username, "write", LAB_AMI_WRITE)
        # The lab's UDP block: RTP below, UDPTL (T.38) in the last 50 ports, so
        # two labs on one host (a T.38 pair, parallel test workers) never
        # share a UDPTL port.
        patch("rtp.conf", "general", "rtpstart", str(state.rtp_start))
        patch("rtp.conf", "general", "rtpend", str(state.rtp_end - 50))
        patch("udptl.conf", "general", "udptlstart", str(state.rtp_end - 49))
        patch("udptl.conf", "general", "udptlend", str(state.rtp_end))
        patch("pjsip.conf", "transport-udp", "bind", f"127.0.0.1:{state.sip_port}")
        patch("extensions.conf", "globals", "KALLIOPE_AGI", f"agi://{state.agi_bind}")
        with (etc / "extensions.conf").open("a") as f:
            f.write('\n; LAB ONLY\n#include "extensions_lab.conf"\n')
        with (etc / "pjsip.conf").open("a") as f:
            f.write('\n; LAB ONLY\n#include "pjsip_lab.conf"\n')
        patch("pjsip_lab.conf", "lab-trunk-aor", "contact", f"sip:127.0.0.1:{state.sip_port}")
        (etc / "asterisk.conf").write_text(self._asterisk_conf())
        # Realtime PJSIP accounts are always wired: a serve with
        # pjsip_accounts = realtime answers them, and without one the lookups
        # find nothing (the files answer first).
        for name, text in realtime_files(f"http://{state.realtime_bind}", "asterisk", state.realtime_password).items():
            (etc / name).write_text(text)

    def _asterisk_conf(self) -> str:
        d = self.inner
        return f"""; Rendered by kalliope-tel lab for instance {self.name}
[directories]
astetcdir => {d}/etc
astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules
astvarlibdir => /var/lib/asterisk
astdbdir => {d}/lib
astkeydir => {d}
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {d}/spool
astrundir => {d}/run
astlogdir => {d}/log
astsbindir => /usr/sbin

[options]
verbose = 0
debug = 0
nocolor = yes
highpriority = no
transmit_silence = no
; Lab calls finish quickly; do not wait for them on shutdown.
"""

    # -- lifecycle ---------------------------------------------------------
    def start(self, *, agi_port: int | None = None, timeout: float = 60.0) -> LabState:
        """Start Asterisk unless it runs already; return its addresses."""
        if self.is_running():
            state = self.read_state()
            assert state is not None
            return state
        self.ensure_chroot()
        self.dir.mkdir(parents=True, exist_ok=True)
        rtp_start, rtp_end = free_udp_range()
        state = LabState(
            name=self.name,
            pid=0,
            http_port=free_tcp_port(),
            ami_port=free_tcp_port(),
            sip_port=free_tcp_port(),
            agi_port=agi_port or free_tcp_port(),
            rtp_start=rtp_start,
            rtp_end=rtp_end,
            ari_username="kalliope",
            ari_password=secrets.token_urlsafe(18),
            ami_username="kalliope",
            ami_password=secrets.token_urlsafe(18),
            started_at=time.time(),
            realtime_port=free_fixed_tcp_port(),
            realtime_password=secrets.token_urlsafe(18),
        )
        self.render(state)
        # A new lab Asterisk, a new CDR history: the file of an earlier run
        # would hand its calls (of PBXs that may no longer exist) to whatever
        # store reads it next.
        for old in (self.dir / "log" / "cdr-custom").glob("*"):
            old.unlink()
        return self._spawn(state, timeout)

    def _spawn(self, state: LabState, timeout: float) -> LabState:
        """Run Asterisk for ``state`` and wait until it is fully booted."""
        log = (self.dir / "log" / "console.log").open("ab")
        # -f: stay in the foreground so the pid we hold is Asterisk itself
        # (chroot execs it); a new session keeps it alive after the CLI exits.
        proc = subprocess.Popen(
            ["chroot", str(self.root), ASTERISK_BIN, "-f", "-q", "-C", f"{self.inner}/etc/asterisk.conf"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        state = LabState(**{**asdict(state), "pid": proc.pid, "started_at": time.time()})
        self._write_state(state)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(
                    f"Asterisk exited at start (code {proc.returncode}); see {self.dir / 'log' / 'console.log'}"
                )
            if "fully booted" in self.cli("core waitfullybooted", timeout=5, check=False).lower():
                return state
            time.sleep(0.2)
        self.stop()
        raise LabError(f"Asterisk did not finish booting within {timeout:.0f} s")

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop this instance's Asterisk by its own pid. True if one was running."""
        state = self.read_state()
        if state is None or not _pid_alive(state.pid):
            return False
        self.cli("core stop now", timeout=5, check=False)
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and _pid_alive(state.pid):
                os.kill(state.pid, sig)
            deadline = time.monotonic() + timeout / 3
            while time.monotonic() < deadline and _pid_alive(state.pid):
                time.sleep(0.1)
            if not _pid_alive(state.pid):
                break
        return True

    def kill(self) -> None:
        """SIGKILL Asterisk: a crash, with no goodbye on any socket."""
        state = self.read_state()
        if state is not None and _pid_alive(state.pid):
            os.kill(state.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _pid_alive(state.pid):
                time.sleep(0.05)

    def restart(self, timeout: float = 60.0, *, crash: bool = False) -> LabState:
        """Start again on the same ports and credentials (a restart or crash drill)."""
        state = self.read_state()
        if state is None:
            raise LabError(f"lab {self.name} was never started")
        if crash:
            self.kill()
        else:
            self.stop()
        return self._spawn(state, timeout)

    def purge(self) -> None:
        """Stop and delete the instance directory (logs included)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- inspection --------------------------------------------------------
    def cli(self, command: str, *, timeout: float = 10.0, check: bool = True) -> str:
        """Run one Asterisk CLI command through the instance's control socket."""
        try:
            result = subprocess.run(
                [
                    "chroot",
                    str(self.root),
                    ASTERISK_BIN,
                    "-C",
                    f"{self.inner}/etc/asterisk.conf",
                    "-rx",
                    command,
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            if check:
                raise LabError(f"Asterisk CLI {command!r} timed out") from None
            return ""
        if check and result.returncode != 0:
            raise LabError(f"Asterisk CLI {command!r} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def status(self) -> LabStatus:
        state = self.read_state()
        if state is None or not _pid_alive(state.pid):
            return LabStatus(False, "", (), state)
        version = self.cli("core show version", check=False).strip()
        modules = parse_module_show(self.cli("module show", check=False))
        return LabStatus(True, version, modules, state)


def parse_module_show(text: str) -> tuple[ModuleStatus, ...]:
    """Parse ``module show`` output.

    Lines look like ``res_ari.so   Asterisk RESTful Interface   Running   core``.
    """
    found = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or not parts[0].endswith(".so"):
            continue
        running = "Running" in parts
        idx = parts.index("Running") if running else len(parts)
        found.append(ModuleStatus(parts[0], " ".join(parts[1:idx]), running))
    return tuple(found)
