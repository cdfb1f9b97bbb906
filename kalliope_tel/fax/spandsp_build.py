"""Build (once) and load the API-mode spandsp extension.

The extension is compiled against Debian's spandsp header into a cache
directory keyed by everything that changes the result (declarations,
Python's ABI tag, the installed library), so a second process finds it
built. Builds go to a private directory and are renamed into place, so two
processes starting at once (test workers, cluster nodes) cannot load half a
file. Any failure (no compiler, no header) returns None: the caller falls
back to ABI mode, slower but working.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType

import structlog

log = structlog.get_logger(__name__)
MODULE = "_kalliope_spandsp"
HEADER = "/usr/include/spandsp.h"  # Debian puts it in the multiarch dir too; the compiler finds both
LIBRARY_CANDIDATES = ("/usr/lib/x86_64-linux-gnu/libspandsp.so.2", "/usr/lib/aarch64-linux-gnu/libspandsp.so.2")


def cache_root() -> Path:
    base = os.environ.get("KALLIOPE_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kalliope-tel"


def _key(cdef: str, helpers: str) -> str:
    digest = hashlib.sha256((cdef + helpers).encode())
    digest.update(str(sysconfig.get_config_var("EXT_SUFFIX")).encode())
    for candidate in LIBRARY_CANDIDATES:
        if os.path.exists(candidate):
            st = os.stat(candidate)
            digest.update(f"{candidate}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _import(path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(MODULE, str(path))
    spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
    if spec is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[MODULE] = module
    return module


def compiled_module(cdef: str, helpers: str) -> ModuleType | None:
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    suffix = str(sysconfig.get_config_var("EXT_SUFFIX"))
    target = cache_root() / f"spandsp-{_key(cdef, helpers)}" / f"{MODULE}{suffix}"
    try:
        if not target.exists():
            _build(cdef, helpers, target)
        return _import(target)
    except Exception as exc:  # any build or load failure: ABI mode still works
        log.warning("spandsp_api_mode_unavailable", error=str(exc)[:300], fallback="abi")
        return None


def _build(cdef: str, helpers: str, target: Path) -> None:
    import cffi

    target.parent.mkdir(parents=True, exist_ok=True)
    builder = cffi.FFI()
    builder.cdef(cdef)
    source = "#include <string.h>\n#include <spandsp.h>\n" + helpers
    builder.set_source(MODULE, source, libraries=["spandsp", "tiff", "m"])
    with tempfile.TemporaryDirectory(dir=target.parent, prefix="build-") as tmp:
        built = Path(builder.compile(tmpdir=tmp, verbose=False))
        os.replace(built, target)  # atomic: another process sees all or nothing
    log.info("spandsp_api_mode_built", path=str(target))
