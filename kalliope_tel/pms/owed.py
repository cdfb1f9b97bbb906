"""What kalliope-tel owes a PMS, in the store: owed where it is caused,
sent in order by the node holding the PBX's link.

* **Postings** (PS): owed by billing in the transaction that prices a call
  from an occupied room (``owe_posting``, lent to billing). The amount is
  in the currency's cents (FIAS TA carries no decimal point). P# is the
  message's id: increasing, never reused, the same on every resend.
* **Wake-up answers** (WA): the alarms the PMS set (``PmsAlarm``), answered
  once wake-up says they are over (``owe_wakeup_answers``).
* **Room status** (RE): the hotel's cleaning changes, read from its own
  log after the last one reported (``owe_room_status``).

Each is owed once (a unique ``source``); sending takes them in id order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import insert_ignoring
from kalliope_tel.pms.fias import Record
from kalliope_tel.pms.link import stamp
from kalliope_tel.pms.models import Kind, Owed, PmsAlarm, PmsLink, PmsMessage
from kalliope_tel.tenancy.models import Pbx

# Room status values of RE's RS field: 1 dirty/vacant, 2 clean/vacant (FIAS maid status).
DIRTY, CLEAN = "1", "2"


def link_of(session: Session, pbx_id: int) -> PmsLink | None:
    return session.scalar(select(PmsLink).where(PmsLink.pbx_id == pbx_id))


def _owe(session: Session, pbx_id: int, kind: Kind, source: str, room: str, fields: dict[str, Any]) -> bool:
    """Insert once (a second offer of the same source is nothing)."""
    values = {"pbx_id": pbx_id, "kind": kind, "source": source, "room": room, "fields": fields,
              "state": Owed.OWED, "tries": 0, "answer": "", "sent_by": "", "created_at": utcnow()}  # fmt: skip
    statement = insert_ignoring(session, PmsMessage, ["source"]).values(**values)
    return bool(getattr(session.execute(statement), "rowcount", 0))


def owe_posting(session: Session, pbx: Pbx, call: Any) -> None:
    """Billing's hook (``RoomCall``): a posting, when the PBX's link posts charges."""
    link = link_of(session, pbx.id)
    if link is None or not link.enabled or not link.postings:
        return
    cents = (call.cost + 50) // 100  # ten-thousandths -> cents, half up
    start: datetime = call.start
    fields = {
        "TA": str(cents),
        "DD": call.dialled[:30],
        "DU": str(call.billsec),
        **stamp(start.timestamp(), pbx.timezone),
    }
    _owe(session, pbx.id, Kind.POSTING, f"call:{call.record_id}", call.room, fields)


def owe_room_status(session: Session, pbx: Pbx, link: PmsLink, changes: list[tuple[int, str, bool]]) -> int:
    """RE for each cleaning change (id, room, clean), the newest remembered."""
    for event_id, room, clean in changes:
        _owe(session, pbx.id, Kind.ROOM_STATUS, f"cleaning:{event_id}", room, {"RS": CLEAN if clean else DIRTY})
        link.cleaning_seen = max(link.cleaning_seen, event_id)
    return len(changes)


def remember_alarm(session: Session, pbx: Pbx, alarm_id: int, room: str, due: datetime) -> None:
    session.add(PmsAlarm(pbx_id=pbx.id, alarm_id=alarm_id, room=room, due_at=due, answered=False))


def open_alarms(session: Session, pbx: Pbx) -> list[PmsAlarm]:
    return list(session.scalars(select(PmsAlarm).where(PmsAlarm.pbx_id == pbx.id, PmsAlarm.answered.is_(False))))


def owe_wakeup_answers(session: Session, pbx: Pbx, outcomes: Callable[[Session, list[int]], dict[int, str]]) -> int:
    """WA for each PMS alarm that is over (``outcomes``: wake-up's answer)."""
    alarms = open_alarms(session, pbx)
    over = outcomes(session, [a.alarm_id for a in alarms]) if alarms else {}
    for alarm in alarms:
        status = over.get(alarm.alarm_id)
        if status is None:
            continue
        alarm.answered = True
        fields = {"AS": status, **stamp(alarm.due_at.timestamp(), pbx.timezone)}
        _owe(session, pbx.id, Kind.WAKEUP_ANSWER, f"alarm:{alarm.alarm_id}", alarm.room, fields)
    return len(over)


def next_owed(session: Session, pbx_id: int) -> PmsMessage | None:
    """The oldest message not yet done (a sent posting whose answer was never
    recorded comes first: it is sent again, with its P#)."""
    query = select(PmsMessage).where(PmsMessage.pbx_id == pbx_id, PmsMessage.state.in_((Owed.OWED, Owed.SENT)))
    return session.scalars(query.order_by(PmsMessage.id).limit(1)).first()


def as_record(message: PmsMessage) -> Record:
    fields = {"RN": message.room, **message.fields}
    if message.kind is Kind.POSTING:
        fields = {"RN": message.room, "PT": "C", "P#": str(message.id), **message.fields}
    return Record(message.kind.value, {k: str(v) for k, v in fields.items()})


def mark_sent(session: Session, message_id: int, node: str) -> None:
    message = session.get(PmsMessage, message_id)
    if message is None:
        return
    message.tries += 1
    message.sent_at, message.sent_by = utcnow(), node[:100]
    # A posting waits for its answer; the rest are done once written.
    message.state = Owed.SENT if message.kind is Kind.POSTING else Owed.DONE
    if message.state is Owed.DONE:
        message.done_at = message.sent_at


def answered(session: Session, pbx_id: int, sequence: str, status: str, text: str) -> PmsMessage | None:
    """The PMS's PA for P# ``sequence``: done (AS OK), or refused with its reason."""
    if not sequence.isdigit():
        return None
    message = session.get(PmsMessage, int(sequence))
    if message is None or message.pbx_id != pbx_id or message.kind is not Kind.POSTING:
        return None
    if message.state in (Owed.DONE, Owed.REFUSED):
        return message  # a repeated answer: already recorded
    message.state = Owed.DONE if status == "OK" else Owed.REFUSED
    message.answer = f"{status} {text}".strip()[:200]
    message.done_at = utcnow()
    return message


def retry_refused(session: Session, pbx_id: int, message_id: int) -> bool:
    """An operator sends a refused posting again (the PMS was fixed)."""
    message = session.get(PmsMessage, message_id)
    if message is None or message.pbx_id != pbx_id or message.state is not Owed.REFUSED:
        return False
    message.state, message.answer = Owed.OWED, ""
    return True


def counts(session: Session, pbx_id: int) -> dict[str, int]:
    """Messages by state (owed, sent, done, refused)."""
    query = select(PmsMessage.state, func.count()).where(PmsMessage.pbx_id == pbx_id).group_by(PmsMessage.state)
    out = {state.value: 0 for state in Owed}
    out.update({state.value: int(n) for state, n in session.execute(query)})
    return out
