"""A trunk's live registration state, read from Asterisk (AMI
``PJSIPShowRegistrationsOutbound``): Registered, Rejected (the carrier
refused the credentials), Unreachable (no answer yet, or none at all), or
unknown when Asterisk cannot be asked; trunks to carriers that want no
registration have none. The state is never stored: it is what Asterisk
says now."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select

from kalliope_tel.asterisk.ami.protocol import AmiError, AmiMessage
from kalliope_tel.checks import Check
from kalliope_tel.db.engine import transaction
from kalliope_tel.dialplan.trunks import trunk_name
from kalliope_tel.errors import KalliopeError
from kalliope_tel.trunks.models import SipTrunk

if TYPE_CHECKING:
    from kalliope_tel.container import Container

REGISTERED, REJECTED, UNREACHABLE, UNKNOWN, NONE = "registered", "rejected", "unreachable", "unknown", "none"
AMI_WAIT = 5.0


def parse(messages: Iterable[AmiMessage]) -> dict[str, str]:
    """Registration name -> state, from the action's event list."""
    states: dict[str, str] = {}
    for message in messages:
        if message.get("Event") != "OutboundRegistrationDetail":
            continue
        status = message.get("Status")
        state = REGISTERED if status == "Registered" else REJECTED if status == "Rejected" else UNREACHABLE
        states[message.get("ObjectName")] = state
    return states


async def _ask(container: Container) -> dict[str, str] | None:
    try:
        client = container.ami_client()
    except KalliopeError:  # no Asterisk configured (no lab running): nobody to ask
        return None
    try:
        await asyncio.wait_for(client.connect(), AMI_WAIT)
        return parse(await client.action_list("PJSIPShowRegistrationsOutbound", timeout=AMI_WAIT))
    except (AmiError, OSError, TimeoutError):
        return None
    finally:
        await client.aclose()


def trunk_states(container: Container, trunks: list[SipTrunk]) -> dict[int, str]:
    """Each trunk's state (id -> state); one AMI question for all of them."""
    if not any(t.carrier.registers for t in trunks):
        return {t.id: NONE for t in trunks}
    found = asyncio.run(_ask(container))
    return {
        t.id: NONE
        if not t.carrier.registers
        else UNKNOWN
        if found is None
        else found.get(trunk_name(t.id), UNREACHABLE)
        for t in trunks
    }


def doctor_checks(container: Container) -> list[Check]:
    with transaction(container.sessions, read_only=True) as session:
        trunks = list(session.scalars(select(SipTrunk).order_by(SipTrunk.id)))
        labels = {t.id: f"{t.description} ({t.carrier.name}, {t.endpoint})" for t in trunks}
        states = trunk_states(container, trunks) if trunks else {}
    checks = []
    for trunk_id, state in states.items():
        if state == NONE:
            checks.append(
                Check(f"trunk {trunk_id}", True, f"{labels[trunk_id]}: no registration (the carrier wants none)")
            )
        elif state == REGISTERED:
            checks.append(Check(f"trunk {trunk_id}", True, f"{labels[trunk_id]}: Registered"))
        else:
            fix = {
                REJECTED: "the carrier refused the username or password: check them with the carrier",
                UNREACHABLE: "no answer from the carrier: check its address, port and transport, and the network",
                UNKNOWN: "Asterisk could not be asked (see the AMI check)",
            }[state]
            checks.append(Check(f"trunk {trunk_id}", False, f"{labels[trunk_id]}: {state.capitalize()}", fix))
    return checks
