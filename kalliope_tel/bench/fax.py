"""Fax engine speed: simulated call seconds per CPU second, per mode.

Two sessions joined in memory send a multi-page document (as the loopback
tests do), several times; the figure is simulated call time over CPU time.
For audio, the same loop written in C against spandsp (compiled here with the
system compiler) gives spandsp's own cost, so the binding's overhead is
measured, not guessed.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kalliope_tel.fax import spandsp
from kalliope_tel.fax.loopback import run_g711, run_t38
from kalliope_tel.fax.session import AudioFaxSession, FaxOptions, T38FaxSession
from kalliope_tel.fax.spandsp import V17, V29

C_SOURCE = Path(__file__).parent / "c" / "fax_loop.c"
Pair = tuple[AudioFaxSession, AudioFaxSession] | tuple[T38FaxSession, T38FaxSession]
MODES = {"v17-ecm": ("audio", True, V17), "v29": ("audio", False, V29), "t38": ("t38", True, V17 | V29)}


@dataclass
class FaxModeFigures:
    mode: str
    pages: int
    simulated_seconds: float
    cpu_seconds: float
    speed_x_realtime: float
    c_speed_x_realtime: float | None
    binding_overhead_pct: float | None
    binding_overhead_instructions_pct: float | None
    binding: str  # api (compiled) or abi (dlopen fallback)


def _document(path: Path, pages: int) -> None:
    from PIL import Image, ImageDraw

    images = []
    for n in range(pages):
        page = Image.new("1", (1728, 2200), 1)
        draw = ImageDraw.Draw(page)
        for k in range(200):
            x, y = (k * 53 + n * 17) % 1600, (k * 97 + n * 29) % 2100
            draw.rectangle([x, y, x + 30, y + 20], fill=0)
        images.append(page)
    images[0].save(path, save_all=True, append_images=images[1:], compression="group4", dpi=(204, 196))


def _pair(mode: str, src: Path, dst: Path) -> Pair:
    """A sender of ``src`` and a receiver into ``dst`` for ``mode``."""
    kind, ecm, modems = MODES[mode]
    options = FaxOptions(ecm=ecm, modems=modems)
    if kind == "audio":
        return AudioFaxSession(calling=True, options=options, tx_file=src), AudioFaxSession(
            calling=False, options=options, rx_file=dst
        )
    return T38FaxSession(calling=True, options=options, tx_file=src), T38FaxSession(
        calling=False, options=options, rx_file=dst
    )


def _call(pair: Pair) -> float:
    """The loopback call in the pair's mode; simulated seconds."""
    a, b = pair
    if isinstance(a, AudioFaxSession) and isinstance(b, AudioFaxSession):
        return run_g711(a, b)
    if isinstance(a, T38FaxSession) and isinstance(b, T38FaxSession):
        return run_t38(a, b)
    raise TypeError("sessions of different kinds")


def _python_run(mode: str, src: Path, dst: Path) -> tuple[float, float]:
    pair = _pair(mode, src, dst)
    cpu0 = time.process_time()
    simulated = _call(pair)
    cpu = time.process_time() - cpu0
    a, b = pair
    if not (a.result and a.result.ok and b.result and b.result.ok):
        raise RuntimeError(f"{mode}: the benchmark fax failed ({a.result}, {b.result})")
    a.close()
    b.close()
    return simulated, cpu


def child(mode: str, src: str, dst: str, run: str) -> None:
    """One loopback call in its own process, for instruction counting
    (``run`` "0": set up only, the baseline)."""
    pair = _pair(mode, Path(src), Path(dst))
    if run == "1":
        _call(pair)


def _instructions(command: list[str]) -> int | None:
    """User-space instructions a command executes: the CPU's own counter
    (``perf stat``) or, where the machine has none (virtual machines often
    hide it: "<not supported>"), valgrind's count (cachegrind without its
    cache simulation; slower, the same figure). None with neither."""
    perf = shutil.which("perf")
    if perf is not None:
        done = subprocess.run(
            [perf, "stat", "-x,", "-e", "instructions:u", *command], capture_output=True, text=True, check=False
        )
        for line in done.stderr.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2].startswith("instructions") and fields[0].isdigit():
                return int(fields[0])
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    done = subprocess.run(
        [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *command],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stderr.splitlines():
        if "I" in line and "refs:" in line:  # "==123== I   refs:      1,234,567"
            return int(line.rsplit(":", 1)[1].strip().replace(",", ""))
    return None


def _instruction_overhead(mode: str, binary: Path, src: Path, tmp: Path) -> float | None:
    """The binding's overhead in instructions: the loop's count in Python over
    the same loop's in C, each less its own set-up. Instructions are not
    seconds, but they do not change with the neighbours' load."""
    _, ecm, modems = MODES[mode]
    py = [sys.executable, "-c", "import sys; from kalliope_tel.bench.fax import child; child(*sys.argv[1:])", mode]
    c = [str(binary)]
    counts = []
    for command, args in ((py, [str(src), str(tmp / "i.tif")]), (c, [str(src), str(tmp / "i.tif")])):
        extra = [str(int(ecm)), str(modems)] if command is c else []
        full = _instructions([*command, *args, *extra, "1"])
        setup = _instructions([*command, *args, *extra, "0"])
        if full is None or setup is None:
            return None
        counts.append(full - setup)
    return counts[0] / counts[1] - 1


def _c_binary(tmp: Path) -> Path | None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary = tmp / "fax_loop"
    result = subprocess.run(
        [compiler, "-O2", "-o", str(binary), str(C_SOURCE), "-lspandsp", "-ltiff", "-lm"],
        capture_output=True,
        text=True,
        check=False,
    )
    return binary if result.returncode == 0 else None


def run(*, pages: int = 5, repeats: int = 15) -> list[FaxModeFigures]:
    """Each run is a whole call; the best run of each side is compared (the
    least disturbed by the rest of the machine). The overhead is the median
    of per-pair ratios, a Python run and a C run back to back, because this
    class of machine changes speed by tens of percent from minute to minute
    and neighbouring runs share the same conditions."""
    figures = []
    with tempfile.TemporaryDirectory(prefix="kt-bench-fax-") as tmpdir:
        tmp = Path(tmpdir)
        src = tmp / "doc.tif"
        _document(src, pages)
        binary = _c_binary(tmp)
        for mode in MODES:
            kind, ecm, modems = MODES[mode]
            speeds, c_speeds = [], []
            sim = cpu = 0.0
            for r in range(repeats):
                s, c = _python_run(mode, src, tmp / f"{mode}-{r}.tif")
                sim, cpu = sim + s, cpu + c
                speeds.append(s / c if c else 0.0)
                if binary is not None and kind == "audio":
                    out = subprocess.run(
                        [str(binary), str(src), str(tmp / f"c-{mode}-{r}.tif"), str(int(ecm)), str(modems)],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout.split()
                    c_speeds.append(float(out[0]) / float(out[1]))
            by_instructions = _instruction_overhead(mode, binary, src, tmp) if binary and kind == "audio" else None
            speed = max(speeds)
            c_speed = max(c_speeds) if c_speeds else None
            overhead = statistics.median(c / p - 1 for c, p in zip(c_speeds, speeds, strict=True)) if c_speeds else None
            figures.append(
                FaxModeFigures(
                    mode=mode,
                    pages=pages,
                    simulated_seconds=round(sim / repeats, 1),
                    cpu_seconds=round(cpu / repeats, 3),
                    speed_x_realtime=round(speed),
                    c_speed_x_realtime=round(c_speed) if c_speed else None,
                    binding_overhead_pct=round(overhead * 100, 1) if overhead is not None else None,
                    binding_overhead_instructions_pct=round(by_instructions * 100, 1)
                    if by_instructions is not None
                    else None,
                    binding=spandsp.MODE,
                )
            )
    return figures


def as_dicts(figures: list[FaxModeFigures]) -> list[dict[str, object]]:
    return [asdict(f) for f in figures]
