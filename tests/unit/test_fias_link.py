"""The FIAS link state machine: start, description, keep-alive, a silent
PMS found dead, records delivered only on a linked link, malformed input
refused without ending it, resync frames, and the link's end."""

from __future__ import annotations

from kalliope_tel.pms.fias import Malformed, Record
from kalliope_tel.pms.link import HANDLED, Deliver, FiasLink, Refused, State


def kinds(records: list[Record]) -> list[str]:
    return [r.kind for r in records]


def test_link_start_description_and_records() -> None:
    link = FiasLink(now=1000.0, alive_every=30, dead_after=90)
    assert kinds(link.take()) == ["LS"]
    # A guest record before the link is up is refused, not applied.
    early = link.receive(Record("GI", {"RN": "101"}), 1001)
    assert isinstance(early[0], Refused) and link.state is State.CONNECTED
    assert link.receive(Record("LA"), 1002) == []
    sent = link.take()
    assert kinds(sent) == ["LD"] + ["LR"] * len(HANDLED) + ["LA"] and link.state is State.LINKED
    assert {r.get("RI") for r in sent if r.kind == "LR"} == set(HANDLED)
    guest = Record("GI", {"RN": "101", "GN": "Rossi"})
    assert link.receive(guest, 1003) == [Deliver(guest)]
    bad = link.receive(Malformed("field id", b"GI|x|"), 1004)
    assert isinstance(bad[0], Refused) and link.state is State.LINKED


def test_keep_alive_dead_pms_resync_and_end() -> None:
    link = FiasLink(now=0.0, alive_every=30, dead_after=90)
    link.receive(Record("LS"), 1)
    link.take()
    link.tick(31)
    assert kinds(link.take()) == ["LA"]
    link.resync()
    assert kinds(link.take()) == ["DR"]
    link.receive(Record("DS"), 40)
    assert link.resyncing
    link.receive(Record("DE"), 41)
    assert not link.resyncing
    link.tick(41 + 91)
    assert link.state is State.DEAD
    other = FiasLink(now=0.0)
    other.receive(Record("LA"), 1)
    other.end()
    assert kinds(other.take())[-1] == "LE" and other.state is State.ENDED
