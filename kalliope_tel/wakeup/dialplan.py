"""Names the wake-up service shares with the generated dialplan."""

from __future__ import annotations

from kalliope_tel.asterisk import confgate


def wakeup_dial_context(pbx_slug: str) -> str:
    """The context that rings a PBX's room for a wake-up call (generated per PBX)."""
    return confgate.section("kt", confgate.slug(pbx_slug), "wakeup-dial")


def wakeup_caller_id(name: str, number: str) -> str:
    """``"NAME" <NUMBER>`` for the originate; the name is free text (escaped),
    the number was validated when the settings were saved (checked again)."""
    label = confgate.callerid_label(name)
    return f'"{label}" <{confgate.number(number, "what.caller_id_number")}>' if number else f'"{label}"'
