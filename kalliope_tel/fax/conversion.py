"""Documents to fax pages in a process of their own, never in serve's.

Serve's event loop carries calls (wake-up, fax media every 20 ms); a
document from a stranger may be built to take all the memory or CPU that a
decoder will give it. So each conversion runs in a converter process
(``python -m kalliope_tel.fax.conversion``) that first sets its own limits
(``sandbox.Limits``: address space, CPU seconds, file size), then does the
work of ``outbox.prepare_job_documents``, whose LibreOffice and Ghostscript
run further inside the jail. The caller waits on a thread; a wall-clock
watchdog kills the converter's process group when it runs over.

At most ``fax_convert_workers`` converters run at once per node, and at
most ``fax_convert_queue`` more wait for one; past that a web upload is
refused at once (``ConverterBusy``, HTTP 503 with the reason) instead of
piling up. Mail2Fax and the CLI wait their turn (``wait=True``): their
requests are already on their own threads and nothing is lost by waiting.

The protocol on the converter's standard output is one JSON object per
line: ``{"progress": [name, n, total]}`` while it works, then one of
``{"done": {...}}`` or ``{"refused": {"name": ..., "reason": ...}}``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import structlog

from kalliope_tel import sandbox
from kalliope_tel.config import Settings
from kalliope_tel.errors import KalliopeError
from kalliope_tel.fax.documents import DocumentRefused
from kalliope_tel.fax.outbox import PreparedDocuments
from kalliope_tel.fax.store import work_dir
from kalliope_tel.sandbox import Limits

log = structlog.get_logger(__name__)
Progress = Callable[[str, int, int], None]


class ConverterBusy(KalliopeError):
    """Every converter is busy and the queue is full: try again shortly."""


class ConversionQueue:
    """Converters running at once, and callers allowed to wait for one."""

    def __init__(self, running: int, waiting: int) -> None:
        self.running = max(1, running)
        self.waiting = max(0, waiting)
        self._slots = threading.BoundedSemaphore(self.running)
        self._lock = threading.Lock()
        self.admitted = 0  # running plus waiting, for the refusal and the tests

    @contextmanager
    def slot(self, *, wait: bool) -> Iterator[None]:
        with self._lock:
            if not wait and self.admitted >= self.running + self.waiting:
                raise ConverterBusy("fax.converter_busy", running=self.running, waiting=self.waiting)
            self.admitted += 1
        try:
            with self._slots:
                yield
        finally:
            with self._lock:
                self.admitted -= 1


@dataclass(frozen=True)
class Converter:
    queue: ConversionQueue
    limits: Limits

    def prepare(
        self,
        data_dir: Path,
        files: list[Path],
        resolution: str = "fine",
        *,
        progress: Progress | None = None,
        wait: bool = False,
    ) -> PreparedDocuments:
        """The documents as fax pages (``outbox.prepare_job_documents``), made
        in a converter process; raises ``DocumentRefused`` or ``ConverterBusy``."""
        if not files:
            raise ValueError("no documents")
        with self.queue.slot(wait=wait):
            folder = work_dir(data_dir)
            try:
                return self._run(data_dir, folder, files, resolution, progress)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise

    def _run(
        self, data_dir: Path, folder: Path, files: list[Path], resolution: str, progress: Progress | None
    ) -> PreparedDocuments:
        # The jails' scratch folders go under one of ours, removed whatever
        # becomes of the converter (a killed one cleans nothing up).
        scratch = Path(tempfile.mkdtemp(prefix="kt-convert-", dir=sandbox.JAIL_BASE))
        scratch.chmod(0o711)
        request = {
            "scratch": str(scratch),
            "data_dir": str(data_dir),
            "folder": str(folder),
            "files": [str(f) for f in files],
            "resolution": resolution,
            "limits": asdict(self.limits),
        }
        first = files[0].name
        killed = threading.Event()
        try:
            with tempfile.TemporaryFile() as errors:
                child = subprocess.Popen(
                    [sys.executable, "-m", "kalliope_tel.fax.conversion"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                    env={**os.environ, "TMPDIR": str(scratch)}, start_new_session=True, cwd=scratch,
                )  # fmt: skip
                watchdog = threading.Timer(self.limits.wall_seconds, _kill, (child, killed))
                watchdog.daemon = True
                watchdog.start()
                try:
                    answer = _talk(child, request, progress)
                finally:
                    watchdog.cancel()
                    _kill(child, None)  # its jails too (same session), if any are left
                    child.wait()
                    errors.seek(0)
                    stderr = errors.read()[-2000:].decode("utf-8", "replace")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if "done" in answer:
            done = answer["done"]
            tiff, pdf = Path(done["tiff"]), Path(done["pdf"])
            return PreparedDocuments(folder, tiff, pdf, int(done["pages"]), done["document"])
        if "refused" in answer:
            refused = answer["refused"]
            raise DocumentRefused(
                refused["name"], refused.get("code") or refused["reason"], **refused.get("params", {})
            )
        if killed.is_set():
            raise DocumentRefused(first, "fax.doc.convert_timeout", seconds=f"{self.limits.wall_seconds:g}")
        log.warning("fax.converter_failed", code=child.returncode, stderr=stderr[-500:])
        if child.returncode in (-signal.SIGKILL, -signal.SIGXCPU) or "MemoryError" in stderr:
            raise DocumentRefused(
                first, "fax.doc.convert_limits", mib=self.limits.memory_bytes >> 20, seconds=self.limits.cpu_seconds
            )
        raise KalliopeError(f"the fax converter failed (exit {child.returncode}); see the node's log")


def _talk(child: subprocess.Popen[bytes], request: dict[str, Any], progress: Progress | None) -> dict[str, Any]:
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(json.dumps(request).encode())
        child.stdin.close()
    except BrokenPipeError:
        return {}
    for line in _lines(child.stdout):
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if "progress" in message:
            if progress is not None:
                name, n, total = message["progress"]
                progress(str(name), int(n), int(total))
            continue
        return message
    return {}


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    # Bounded reads: the converter is ours, but what it echoes is not.
    while line := stream.readline(1 << 16):
        yield line


def _kill(child: subprocess.Popen[bytes], flag: threading.Event | None) -> None:
    if child.poll() is not None:
        return
    if flag is not None:
        flag.set()
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def for_settings(settings: Settings) -> Converter:
    return converter(
        settings.fax_convert_workers, settings.fax_convert_queue,
        settings.fax_convert_memory_mb, settings.fax_convert_seconds,
    )  # fmt: skip


_converters: dict[tuple[int, int, Limits], Converter] = {}
_converters_lock = threading.Lock()


def converter(workers: int = 2, waiting: int = 8, memory_mb: int = 1024, seconds: int = 300) -> Converter:
    """This process's converter for these settings (one queue per node)."""
    limits = Limits(memory_bytes=memory_mb << 20, cpu_seconds=seconds, wall_seconds=float(seconds))
    key = (workers, waiting, limits)
    with _converters_lock:
        if key not in _converters:
            _converters[key] = Converter(ConversionQueue(workers, waiting), limits)
        return _converters[key]


def _serve_one() -> int:
    """The converter process: limits first, then the work, then one answer."""
    request = json.loads(sys.stdin.read(1 << 20))
    Limits(**request["limits"]).apply()
    sandbox.JAIL_BASE = Path(request["scratch"])
    from kalliope_tel.fax.outbox import prepare_job_documents

    def emit(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    try:
        prepared = prepare_job_documents(
            Path(request["data_dir"]),
            [Path(f) for f in request["files"]],
            request["resolution"],
            progress=lambda name, n, total: emit({"progress": [name, n, total]}),
            folder=Path(request["folder"]),
        )
    except DocumentRefused as exc:
        params = {k: str(v) for k, v in exc.reason_params.items()}
        emit({"refused": {"name": exc.name, "reason": exc.reason, "code": exc.reason_code, "params": params}})
        return 0
    except MemoryError:
        sys.stderr.write("MemoryError\n")
        return 3
    emit({"done": {"tiff": str(prepared.tiff), "pdf": str(prepared.pdf), "pages": prepared.pages,
                   "document": prepared.document}})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(_serve_one())
