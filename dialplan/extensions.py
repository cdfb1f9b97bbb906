"""The core's part of a PBX's generated configuration: every extension.

Dialplan: one context with each active extension's hint (its devices'
state, for BLF keys) and its call (ring its devices); a suspended one
refuses calls. Features that keep more on an extension (the hotel's rooms)
are included before it, so their contexts answer their numbers first.
PJSIP: the endpoint, auth and AOR of every SIP account of an active
extension; a suspended extension has none (its phones can neither register
nor call). Every value passes the gate here, where it is written.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate as gate
from kalliope_tel.dialplan.naming import context, devices
from kalliope_tel.extensions.accounts import sip_login
from kalliope_tel.extensions.models import Extension, ExtensionStatus, SipAccount
from kalliope_tel.tenancy.models import Pbx

RING_SECONDS = 30


def _extensions(session: Session, pbx: Pbx) -> list[Extension]:
    return list(session.scalars(select(Extension).where(Extension.pbx_id == pbx.id).order_by(Extension.number)))


PIN_CHECK = "*80"  # a phone checks its service PIN (kalliope-pin-check)


def dialplan_lines(session: Session, pbx: Pbx, device_template: str, answered: frozenset[str]) -> list[str]:
    """``answered``: numbers a feature's contexts take the calls of (hints only)."""
    slug = gate.slug(pbx.slug)
    out = [
        "",
        "; Extensions: the hint (state for BLF keys), then the call; the service PIN check.",
        f"[{context(slug, 'extensions')}]",
        f"exten => {PIN_CHECK},1,Goto(kalliope-pin-check,s,1)",
    ]
    for ext in _extensions(session, pbx):
        number = gate.extension(ext.number)
        if ext.status is ExtensionStatus.SUSPENDED:
            out.append(f"exten => {number},1,Hangup(21)")
            continue
        logins = [gate.sip_user(sip_login(pbx, a.username)) for a in sorted(ext.accounts, key=lambda a: a.username)]
        if logins:
            out.append(f"exten => {number},hint,{'&'.join(f'PJSIP/{login}' for login in logins)}")
        dial = devices(number, logins, device_template)
        if number in answered:
            continue
        if dial:
            out += [f"exten => {number},1,Dial({dial},{RING_SECONDS})", " same => n,Hangup()"]
        else:
            out.append(f"exten => {number},1,Congestion(5)")
    return out


# The three PJSIP objects of a SIP account, as (section, type, options).
PjsipObject = tuple[str, str, list[tuple[str, str]]]


def account_objects(pbx: Pbx, ext: Extension, acc: SipAccount) -> list[PjsipObject]:
    """The endpoint, auth and AOR of one account of an active extension: the
    same options whether written to a file or answered to realtime."""
    slug = gate.slug(pbx.slug)
    number = gate.extension(ext.number)
    label = gate.callerid_label(ext.name or ext.number)
    login = gate.sip_user(sip_login(pbx, acc.username))
    endpoint = [
        ("context", context(slug, "phones")),
        ("disallow", "all"),
        ("allow", "ulaw,alaw"),
        ("auth", f"{login}-auth"),
        ("aors", login),
        ("direct_media", "no"),
        ("rtp_symmetric", "yes"),
        ("force_rport", "yes"),
        ("rewrite_contact", "yes"),
        ("t38_udptl", "yes"),
        ("t38_udptl_ec", "redundancy"),
        # Asterisk 22 copies tenantid into CDRs and CEL (billing per PBX).
        ("tenantid", slug),
        ("callerid", f'"{label}" <{number}>'),
        ("set_var", f"KALLIOPE_FROM_EXTEN={number}"),
    ]
    auth = [
        ("auth_type", "md5"),
        ("username", login),
        ("realm", gate.identifier(acc.realm, "SIP realm")),
        ("md5_cred", gate.hex_digest(acc.ha1)),
    ]
    aor = [("max_contacts", str(int(acc.max_contacts))), ("remove_existing", "yes"), ("qualify_frequency", "60")]
    return [(login, "endpoint", endpoint), (f"{login}-auth", "auth", auth), (login, "aor", aor)]


def active_accounts(session: Session, pbx: Pbx) -> list[tuple[Extension, SipAccount]]:
    """Every SIP account of the PBX's active extensions (a suspended one has none)."""
    return [
        (ext, acc)
        for ext in _extensions(session, pbx)
        if ext.status is not ExtensionStatus.SUSPENDED
        for acc in sorted(ext.accounts, key=lambda a: a.username)
    ]


def pjsip_sections(session: Session, pbx: Pbx) -> list[str]:
    out: list[str] = []
    for ext, acc in active_accounts(session, pbx):
        for section, kind, options in account_objects(pbx, ext, acc):
            out += ["", f"[{section}]", f"type = {kind}", *(f"{key} = {value}" for key, value in options)]
    return out
