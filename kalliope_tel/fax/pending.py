"""Receptions waiting to be registered: a note on disk per call, written
before the register is tried and removed once it has the reception.

A fax that arrived is in the spool whatever the database is doing; its
registration (the register row, the senders' mails, the archive copies) must
follow it. The note holds what the call gave (``Reception``), the PBX, the
instance, the slot and where the pages are, so the registration can be
retried later (``FaxService.register_pending``, every deliveries pass, and so
at every start) even after the node restarted. Notes live in this node's
data directory, so only this node retries its own: no two nodes race for one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kalliope_tel.fax.inbound import Reception
from kalliope_tel.fax.models import Media
from kalliope_tel.files import private_dir, safe_file_name

GIVE_UP_AFTER = 2880  # passes (a day at the 30 s the loop sleeps at most): then kept aside with .failed


@dataclass
class Pending:
    path: Path
    pbx_slug: str
    instance_id: int
    slot_id: int | None
    reception: Reception
    tiff: Path | None
    tries: int = 0


def folder(data_dir: Path) -> Path:
    return private_dir(data_dir / "fax" / "pending")


def write(data_dir: Path, pbx_slug: str, instance_id: int, slot_id: int | None, reception: Reception,
          tiff: Path | None) -> Pending:  # fmt: skip
    path = folder(data_dir) / f"{safe_file_name(reception.call_id, 100)}.json"
    note = Pending(path, pbx_slug, instance_id, slot_id, reception, tiff)
    save(note)
    return note


def save(note: Pending) -> None:
    reception = dataclasses.asdict(note.reception)
    for key in ("started_at", "ended_at"):
        reception[key] = reception[key].isoformat()
    data = {
        "pbx": note.pbx_slug, "instance_id": note.instance_id, "slot_id": note.slot_id,
        "tiff": str(note.tiff) if note.tiff else None, "tries": note.tries, "reception": reception,
    }  # fmt: skip
    temp = note.path.with_suffix(".tmp")
    with temp.open("w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())  # on disk before the registration is tried: a crash after loses nothing
    temp.chmod(0o600)
    os.replace(temp, note.path)


def load(path: Path) -> Pending:
    data = json.loads(path.read_text())
    fields = data["reception"]
    for key in ("started_at", "ended_at"):
        fields[key] = datetime.fromisoformat(fields[key])
    fields["media"] = Media(fields["media"])
    return Pending(path, data["pbx"], int(data["instance_id"]), data["slot_id"], Reception(**fields),
                   Path(data["tiff"]) if data["tiff"] else None, int(data.get("tries", 0)))  # fmt: skip


def waiting(data_dir: Path) -> list[Path]:
    return sorted(folder(data_dir).glob("*.json"))


def give_up(note: Pending) -> Path:
    aside = note.path.with_suffix(".failed")
    os.replace(note.path, aside)
    return aside
