"""Fax engine speed: simulated call seconds per CPU second, per mode.

Two sessions joined in memory send a multi-page document (as the loopback
tests do), several times; the figure is simulated call time over CPU time.
For audio, the same loop written in C against spandsp (compiled here with the
system compiler) gives spandsp's own cost, so the binding's overhead is
measured, not guessed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kalliope_tel.fax.loopback import run_audio, run_t38
from kalliope_tel.fax.session import AudioFaxSession, FaxOptions, T38FaxSession
from kalliope_tel.fax.spandsp import V17, V29

C_SOURCE = Path(__file__).parent / "c" / "fax_loop.c"
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


def _python_run(mode: str, src: Path, dst: Path) -> tuple[float, float]:
    kind, ecm, modems = MODES[mode]
    cls = AudioFaxSession if kind == "audio" else T38FaxSession
    a = cls(calling=True, options=FaxOptions(ecm=ecm, modems=modems), tx_file=src)
    b = cls(calling=False, options=FaxOptions(ecm=ecm, modems=modems), rx_file=dst)
    cpu0 = time.process_time()
    if isinstance(a, AudioFaxSession) and isinstance(b, AudioFaxSession):
        simulated = run_audio(a, b)
    elif isinstance(a, T38FaxSession) and isinstance(b, T38FaxSession):
        simulated = run_t38(a, b)
    else:
        raise TypeError(f"{mode}: sessions of different kinds")
    cpu = time.process_time() - cpu0
    if not (a.result and a.result.ok and b.result and b.result.ok):
        raise RuntimeError(f"{mode}: the benchmark fax failed ({a.result}, {b.result})")
    a.close()
    b.close()
    return simulated, cpu


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


def run(*, pages: int = 5, repeats: int = 3) -> list[FaxModeFigures]:
    figures = []
    with tempfile.TemporaryDirectory(prefix="kt-bench-fax-") as tmpdir:
        tmp = Path(tmpdir)
        src = tmp / "doc.tif"
        _document(src, pages)
        binary = _c_binary(tmp)
        for mode in MODES:
            sim = cpu = 0.0
            for r in range(repeats):
                s, c = _python_run(mode, src, tmp / f"{mode}-{r}.tif")
                sim, cpu = sim + s, cpu + c
            c_speed = None
            kind, ecm, modems = MODES[mode]
            if binary is not None and kind == "audio":
                c_sim = c_cpu = 0.0
                for r in range(repeats):
                    out = subprocess.run(
                        [str(binary), str(src), str(tmp / f"c-{mode}-{r}.tif"), str(int(ecm)), str(modems)],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout.split()
                    c_sim, c_cpu = c_sim + float(out[0]), c_cpu + float(out[1])
                c_speed = c_sim / c_cpu if c_cpu else None
            speed = sim / cpu if cpu else 0.0
            figures.append(
                FaxModeFigures(
                    mode=mode,
                    pages=pages,
                    simulated_seconds=round(sim / repeats, 1),
                    cpu_seconds=round(cpu / repeats, 3),
                    speed_x_realtime=round(speed),
                    c_speed_x_realtime=round(c_speed) if c_speed else None,
                    binding_overhead_pct=round((c_speed / speed - 1) * 100, 1) if c_speed else None,
                )
            )
    return figures


def as_dicts(figures: list[FaxModeFigures]) -> list[dict[str, object]]:
    return [asdict(f) for f in figures]
