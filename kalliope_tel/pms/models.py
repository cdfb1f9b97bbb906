"""The PMS link's rows: a PBX's link settings (and which node holds the
link: a lease), what is owed to the PMS (one outbox: postings, wake-up
answers, room status), and the wake-up alarms the PMS set.

A message is owed in the transaction that causes it (the call priced, the
alarm finished, the room cleaned) and sent only by the node holding the
PBX's link lease, in id order. A posting waits for the PMS's answer (PA,
matched by its P#, the posting's sequence); a node that dies after sending
it leaves it ``sent``, and whoever holds the link next sends it again with
the same P#, which the PMS recognises: it is posted once.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, UTCDateTime, str_enum, utcnow
from kalliope_tel.db.leases import Leased
from kalliope_tel.tenancy.models import PbxOwned


class LinkMode(enum.StrEnum):
    CONNECT = "connect"  # kalliope-tel dials the PMS's interface port
    LISTEN = "listen"  # the PMS dials kalliope-tel


class PmsLink(PbxOwned, Leased, Base):
    """One PBX's FIAS link: settings, and its live state as the holder last wrote it."""

    __tablename__ = "pms_link"
    __table_args__ = (UniqueConstraint("pbx_id", name="uq_pms_link_pbx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mode: Mapped[LinkMode] = mapped_column(str_enum(LinkMode, "pms_link_mode"), default=LinkMode.CONNECT)
    host: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int] = mapped_column(Integer, default=0)
    postings: Mapped[bool] = mapped_column(Boolean, default=True)  # call charges to the PMS
    room_status: Mapped[bool] = mapped_column(Boolean, default=False)  # cleaning codes as RE
    # RE's class of service (CS) from the PMS -> the outbound class it sets.
    class_map: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(20), default="down")  # down, connecting, linked, resyncing
    last_record: Mapped[str] = mapped_column(String(200), default="")
    last_record_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(String(300), default="")
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resynced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resync_wanted: Mapped[bool] = mapped_column(Boolean, default=False)
    refused_records: Mapped[int] = mapped_column(Integer, default=0)
    # The last cleaning event reported as room status (RE): the hotel's own
    # log of cleaning changes is read from here on, so none is missed.
    cleaning_seen: Mapped[int] = mapped_column(Integer, default=0)


class Kind(enum.StrEnum):
    POSTING = "PS"
    WAKEUP_ANSWER = "WA"
    ROOM_STATUS = "RE"


class Owed(enum.StrEnum):
    OWED = "owed"
    SENT = "sent"  # a posting written to the PMS, its answer not yet recorded
    DONE = "done"
    REFUSED = "refused"  # the PMS answered with a refusal: kept, shown, never dropped


class PmsMessage(PbxOwned, Base):
    __tablename__ = "pms_message"
    __table_args__ = (UniqueConstraint("source", name="uq_pms_message_source"),)

    # The id is the posting's sequence (P#): increasing, never reused.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[Kind] = mapped_column(str_enum(Kind, "pms_message_kind"))
    # What caused it ("call:<id>", "alarm:<id>", "cleaning:<id>"): owed once.
    source: Mapped[str] = mapped_column(String(60))
    room: Mapped[str] = mapped_column(String(20))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[Owed] = mapped_column(str_enum(Owed, "pms_message_state"), default=Owed.OWED, index=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    answer: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_by: Mapped[str] = mapped_column(String(100), default="")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PmsAlarm(PbxOwned, Base):
    """A wake-up alarm the PMS set (its outcome is answered with WA)."""

    __tablename__ = "pms_alarm"

    alarm_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=False
    )  # wake-up's alarm id (no FK: its model)
    room: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
