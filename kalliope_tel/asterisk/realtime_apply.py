"""What ``serve`` does instead of reloading, with ``pjsip_accounts = realtime``.

* The extensions' SIP accounts: Asterisk keeps what it asked in a memory
  cache per type. This node remembers, per PBX, a digest of every object it
  last rendered; a change expires exactly the objects whose digest moved
  (``SorceryMemoryCacheExpireObject``), and Asterisk's next lookup asks
  serve again. On its first round the node expires the caches whole: it
  cannot know what changed while it was away.
* The dialplan: what changed in a PBX's file is changed in the running
  dialplan (``live_dialplan``); a change of includes is left to a reload.

Expiries that fail (AMI away) stay owed and are retried each round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import structlog
from sqlalchemy.orm import Session

from kalliope_tel.asterisk.ami.client import AmiClient
from kalliope_tel.asterisk.ami.protocol import AmiError
from kalliope_tel.asterisk.live_dialplan import Action, plan
from kalliope_tel.asterisk.realtime_conf import CACHES
from kalliope_tel.dialplan.extensions import account_objects, active_accounts
from kalliope_tel.dialplan.naming import GENERATED_DIR
from kalliope_tel.tenancy.companies import is_serving
from kalliope_tel.tenancy.models import Pbx

log = structlog.get_logger(__name__)
DIALPLAN_PREFIX = f"{GENERATED_DIR}/extensions_"
Objects = dict[tuple[str, str], str]  # (object type, id) -> digest of its options


def objects_of(session: Session, pbx: Pbx) -> Objects:
    """The PJSIP objects realtime answers for this PBX (none when it does not serve)."""
    if not is_serving(session, pbx.id):
        return {}
    out: Objects = {}
    for ext, acc in active_accounts(session, pbx):
        for section, kind, options in account_objects(pbx, ext, acc):
            out[(kind, section)] = hashlib.sha256(repr(options).encode()).hexdigest()
    return out


class RealtimeState:
    def __init__(self) -> None:
        self.objects: dict[int, Objects] = {}  # PBX id -> what it had when last rendered
        self.owed: set[tuple[str, str]] = set()  # (type, id) to expire
        self.caches_fresh = False  # the whole caches expired since this node started
        self.expired = 0
        self.live_actions = 0

    def note(self, rendered: dict[int, Objects], existing: set[int]) -> None:
        """Record what was rendered; owe the expiry of every object that moved."""
        for pbx_id in [p for p in self.objects if p not in existing]:  # PBX deleted
            self.owed.update(self.objects.pop(pbx_id))
        for pbx_id, now in rendered.items():
            before = self.objects.get(pbx_id)
            self.objects[pbx_id] = now
            if not self.caches_fresh:
                continue  # the whole caches are owed anyway
            if before is None:
                # Never rendered by this node since its start: a PBX created
                # (or re-created under the same slug) since; its ids go.
                self.owed.update(now)
                continue
            self.owed.update(key for key in before.keys() | now.keys() if before.get(key) != now.get(key))

    async def expire(self, ami: AmiClient) -> int:
        """Send what is owed; return how many objects were expired."""
        if not self.caches_fresh:
            for cache in CACHES.values():
                await ami.action("SorceryMemoryCacheExpire", {"Cache": cache})
            self.caches_fresh = True
            self.owed.clear()
            log.info("asterisk.realtime_caches_expired", caches=sorted(CACHES.values()))
            return 0
        done = 0
        for kind, object_id in sorted(self.owed):
            # check=False: an object Asterisk never asked for is not in the cache (an error reply).
            fields = {"Cache": CACHES[kind], "Object": object_id}
            await ami.action("SorceryMemoryCacheExpireObject", fields, check=False)
            self.owed.discard((kind, object_id))
            done += 1
        self.expired += done
        return done

    async def change_dialplans(self, ami: AmiClient, changes: dict[str, tuple[str, str]]) -> set[str]:
        """Apply generated files' changes (name -> (text Asterisk read, text
        now); "" for a file it never read or one removed) in the running
        dialplan; return the names done (the others need a reload)."""
        done: set[str] = set()
        for name, (before, after) in changes.items():
            if not name.startswith(DIALPLAN_PREFIX):
                continue
            actions = plan(before, after)
            if actions is not None and await self._run(ami, name, actions):
                done.add(name)
        return done

    async def _run(self, ami: AmiClient, name: str, actions: list[Action]) -> bool:
        try:
            for action in actions:
                if action.name == "Command":
                    # A CLI command's own failure is in its output, not in the reply.
                    cli = dict(action.fields)["Command"]
                    output = await ami.command(cli)
                    if any(word in output for word in ("Unable", "No such", "Failed", "Invalid")):
                        raise AmiError(f"{cli}: {output.strip()[:200]}")
                else:
                    await ami.action(action.name, action.fields)
        except AmiError as exc:  # the reload puts it right
            log.warning("asterisk.live_dialplan_failed", file=name, error=str(exc)[:300])
            return False
        self.live_actions += len(actions)
        return True


def read_old(directory: Path, names: Iterable[str]) -> dict[str, str]:
    """The dialplan files among ``names`` as they are before this round writes or removes them."""
    out = {}
    for name in names:
        if name.startswith(DIALPLAN_PREFIX) and (directory / name).is_file():
            out[name] = (directory / name).read_text()
    return out
