"""Where the fax service keeps documents: under the data directory, one
folder per PBX, owner-only (faxes are someone's correspondence)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from kalliope_tel.files import private_dir


def pbx_dir(data_dir: Path, slug: str) -> Path:
    return private_dir(data_dir / "fax" / "store" / slug)


def outbound_dir(data_dir: Path, slug: str, job_id: int) -> Path:
    return private_dir(pbx_dir(data_dir, slug) / "out" / str(job_id))


def inbound_dir(data_dir: Path, slug: str) -> Path:
    return private_dir(pbx_dir(data_dir, slug) / "in")


def work_dir(data_dir: Path) -> Path:
    """A fresh private folder for a conversion; the caller removes it."""
    return private_dir(data_dir / "fax" / "work" / uuid.uuid4().hex)


def relative(data_dir: Path, path: Path) -> str:
    """How the register stores a path: relative to the data directory, so a
    data directory moved or mounted elsewhere keeps working."""
    return str(path.relative_to(data_dir))


def absolute(data_dir: Path, stored: str) -> Path:
    return data_dir / stored


def pdf_of(document: str) -> str:
    """The PDF kept beside a sent fax's pages (register, report, archive)."""
    return str(Path(document).with_suffix(".pdf"))


def move_into(source: Path, target: Path) -> Path:
    """Move a finished file into place atomically (same filesystem: rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError:
        shutil.copyfile(source, target)
        source.unlink()
    target.chmod(0o600)
    return target
