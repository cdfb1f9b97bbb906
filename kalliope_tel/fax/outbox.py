"""Documents of a fax to send, made ready before the job is queued: each
file checked and converted to fax pages (a password-protected or damaged
document is refused with its reason), all pages in one TIFF, and a PDF of
them for the register, the report and the archive."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from kalliope_tel.fax.documents import prepare, tiff_to_pdf
from kalliope_tel.fax.models import FaxJob
from kalliope_tel.fax.store import move_into, outbound_dir, pdf_of, relative, work_dir


@dataclass
class PreparedDocuments:
    workdir: Path
    tiff: Path
    pdf: Path
    pages: int
    document: str = ""  # relative to the data dir, once bound to a job

    def bind(self, data_dir: Path, pbx_slug: str, job: FaxJob) -> None:
        """Move the pages into the job's folder (inside the job's transaction:
        if it rolls back, the caller removes the work folder)."""
        folder = outbound_dir(data_dir, pbx_slug, job.id)
        tiff = move_into(self.tiff, folder / "document.tif")
        move_into(self.pdf, folder / pdf_of("document.tif"))
        job.document = relative(data_dir, tiff)
        shutil.rmtree(self.workdir, ignore_errors=True)


def prepare_job_documents(
    data_dir: Path,
    files: list[Path],
    resolution: str = "fine",
    progress: Callable[[str, int, int], None] | None = None,
    folder: Path | None = None,
) -> PreparedDocuments:
    """Convert here, in this process: the converter process's work (serve
    and the CLI go through ``conversion.Converter``, which runs this in one)."""
    if not files:
        raise ValueError("no documents")
    folder = folder or work_dir(data_dir)
    try:
        parts = []
        for n, source in enumerate(files, start=1):
            if progress is not None:
                progress(source.name, n, len(files))
            parts.append(prepare(source, folder / f"part{n}", resolution=resolution))
        tiff = folder / "document.tif"
        _join([p.tiff for p in parts], tiff)
        pdf = folder / "document.pdf"
        tiff_to_pdf(tiff, pdf)
        prepared = PreparedDocuments(folder, tiff, pdf, sum(p.pages for p in parts))
        prepared.document = relative(data_dir, tiff)
        return prepared
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _join(tiffs: list[Path], target: Path) -> None:
    if len(tiffs) == 1:
        shutil.copyfile(tiffs[0], target)
        return
    pages: list[Image.Image] = []
    dpi = (204, 196)
    for path in tiffs:
        with Image.open(path) as image:
            for n in range(getattr(image, "n_frames", 1)):
                image.seek(n)
                dpi = image.info.get("dpi", dpi)
                pages.append(image.copy())
    pages[0].save(target, save_all=True, append_images=pages[1:], compression="group4", dpi=dpi)
