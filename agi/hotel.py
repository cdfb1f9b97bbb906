"""Hotel FastAGI handlers: parse the request, ask a hotel service, answer.

Every answer is one prebuilt Core statement (``hotel.callpath``) on the hot
reader's long-lived connections: the decisions asked on every call (room to
room, call limits, outbound class) are reads, in the event loop on SQLite;
the cleaning code writes, in one transaction on the writer thread. Answers are channel variables the static
dialplan branches on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.asterisk import confgate
from kalliope_tel.dialplan_variables import FROM_EXTEN, OUTBOUND_CLASS, ROOM_ACTION
from kalliope_tel.hotel import callpath, calls
from kalliope_tel.hotel.cleaning import PhoneCodeResult
from kalliope_tel.tenancy.models import DEFAULT_PBX_SLUG

if TYPE_CHECKING:
    from kalliope_tel.asterisk.agi.server import AgiRequest, AgiRouter
    from kalliope_tel.container import Container


CLEANING_PROMPTS = {
    PhoneCodeResult.CLEAN: "auth-thankyou",
    PhoneCodeResult.DIRTY: "auth-thankyou",
    PhoneCodeResult.BAD_DIGIT: "invalid",
    PhoneCodeResult.NOT_A_ROOM: "invalid",
    PhoneCodeResult.DISABLED: "feature-not-avail-line",
}


def register(router: AgiRouter, container: Container) -> None:
    async def caller_extension(request: AgiRequest) -> str:
        return (await request.get_variable(FROM_EXTEN)) or ""

    async def cleaning(request: AgiRequest) -> None:
        """``<prefix>X`` from a room phone: 0 clean, 1 dirty; anything else refused."""
        caller = await caller_extension(request)
        code = request.params.get("code", "")
        slug = request.params.get("pbx") or None
        result = await container.hot_reader.write(lambda conn: callpath.cleaning_by_phone(conn, slug, caller, code))
        await request.set_variable("KALLIOPE_HOTEL_RESULT", result.value)
        await request.play(CLEANING_PROMPTS[result])

    async def limits(request: AgiRequest, room: str, *, incoming: bool) -> calls.LimitVerdict:
        if not room.isdigit() or len(room) > 8:
            return calls.LimitVerdict.OK
        # Asterisk counts the room's calls itself (groups vanish with their
        # channels), so a crash of ours can never leave a count behind.
        # Group categories are per PBX (the static dialplan sets them), so two
        # PBXs' room 101 never share a count. Both values passed the gate.
        pbx = confgate.slug(request.params.get("pbx") or DEFAULT_PBX_SLUG)
        expression = f"$[${{GROUP_COUNT({room}@kt-{pbx}-room-in)}} + ${{GROUP_COUNT({room}@kt-{pbx}-room-out)}}]"
        active = int((await request.get_full_variable(expression)) or 0)
        slug = request.params.get("pbx") or None
        return await container.hot_reader.read(
            lambda conn: callpath.call_limits(conn, slug, room, active, incoming=incoming)
        )

    async def room_call(request: AgiRequest) -> None:
        """A call to a room: blocked room-to-room, busy by count, or dial."""
        room = request.params.get("room", "")
        caller = await caller_extension(request)
        slug = request.params.get("pbx") or None
        if (
            await container.hot_reader.read(lambda conn: callpath.room_to_room(conn, slug, caller, room))
        ) is calls.RoomToRoom.BLOCK:
            await request.set_variable(ROOM_ACTION, "blocked")
            return
        verdict = await limits(request, room, incoming=True)
        await request.set_variable(ROOM_ACTION, "dial" if verdict is calls.LimitVerdict.OK else verdict.value)

    async def room_out(request: AgiRequest) -> None:
        """A call from a room: refused when the room is at its calls limit."""
        room = request.params.get("room", "")
        verdict = await limits(request, room, incoming=False)
        await request.set_variable(ROOM_ACTION, "limit" if verdict is calls.LimitVerdict.LIMIT else "ok")

    async def outbound_class(request: AgiRequest) -> None:
        caller = await caller_extension(request)
        slug = request.params.get("pbx") or None
        name = await container.hot_reader.read(lambda conn: callpath.outbound_class(conn, slug, caller))
        await request.set_variable(OUTBOUND_CLASS, name)

    router.add("hotel-cleaning", cleaning)
    router.add("hotel-room-call", room_call)
    router.add("hotel-room-out", room_out)
    router.add("hotel-outbound-class", outbound_class)
