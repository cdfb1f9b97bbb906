"""ZIP archives from outside (DOCX, ODT, XLSX): what their directory
declares is checked before anything unpacks them, so a zip bomb is refused
by a few hundred bytes of reading. Used by the fax documents and the room
import alike."""

from __future__ import annotations

import zipfile
from typing import Any

ZIP_MAX_MEMBERS = 1000
ZIP_MAX_UNPACKED = 100 << 20
ZIP_MAX_RATIO = 100
ZIP_RATIO_FROM = 1 << 20  # small members may deflate as they like


def zip_refusal(archive: zipfile.ZipFile) -> tuple[str, dict[str, Any]] | None:
    """Why the archive is refused (a catalogue code and its parameters), or
    None: too many members, too many bytes unpacked, or a member packed a
    hundred times smaller than it unpacks (a zip bomb's padding)."""
    members = archive.infolist()
    if len(members) > ZIP_MAX_MEMBERS:
        return "zip.members", {"members": len(members), "limit": ZIP_MAX_MEMBERS}
    unpacked = 0
    for member in members:
        unpacked += member.file_size
        if member.file_size > ZIP_RATIO_FROM and member.file_size > ZIP_MAX_RATIO * max(1, member.compress_size):
            return "zip.bomb", {
                "part": repr(member.filename[:60]), "packed": member.compress_size, "unpacked": member.file_size,
            }  # fmt: skip
    if unpacked > ZIP_MAX_UNPACKED:
        return "zip.size", {"mib": unpacked >> 20, "limit": ZIP_MAX_UNPACKED >> 20}
    return None
