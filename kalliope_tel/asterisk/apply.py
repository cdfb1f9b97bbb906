"""Write generated configuration where Asterisk includes it, then reload.

Files are replaced atomically (write to a temporary name, then rename) so a
reload never reads half a file; unchanged files are left alone, and Asterisk
is reloaded only for what changed.
"""

from __future__ import annotations

import os
from pathlib import Path

from kalliope_tel.asterisk.ami.client import AmiClient

RELOADS = {
    "extensions_kalliope_generated.conf": "dialplan reload",
    "pjsip_kalliope.conf": "module reload res_pjsip.so",
}


def write_files(directory: Path, files: dict[str, str]) -> list[str]:
    """Write the files; return the names whose content changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in sorted(files.items()):
        target = directory / name
        if target.is_file() and target.read_text() == text:
            continue
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
        changed.append(name)
    return changed


async def reload(ami: AmiClient, changed: list[str]) -> list[str]:
    """Run the reload command of each changed file; return their outputs."""
    outputs = []
    for command in sorted({RELOADS[name] for name in changed if name in RELOADS}):
        outputs.append(await ami.command(command))
    return outputs
