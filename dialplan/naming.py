"""Names shared by the generator and its fragments: files, contexts, devices."""

from __future__ import annotations

from kalliope_tel.asterisk import confgate as gate

GENERATED_DIR = "kalliope"


def dialplan_file(slug: str) -> str:
    return f"{GENERATED_DIR}/extensions_{gate.slug(slug)}.conf"


def pjsip_file(slug: str) -> str:
    return f"{GENERATED_DIR}/pjsip_{gate.slug(slug)}.conf"


def context(slug: str, *parts: str) -> str:
    """A context of one PBX: ``kt-<slug>-<parts>``."""
    return gate.section("kt", gate.slug(slug), *parts)


def devices(room_ext: str, logins: list[str], device_template: str) -> str:
    """What ``Dial`` rings for a room: its accounts' devices joined by ``&``."""
    if "{account}" in device_template:
        if not logins:
            return ""
        return "&".join(device_template.format(account=gate.sip_user(a), extension=room_ext) for a in logins)
    return device_template.format(extension=gate.extension(room_ext), account=room_ext)
