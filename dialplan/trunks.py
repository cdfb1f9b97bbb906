"""Carrier trunks and numbers in the generated configuration.

Per trunk, two files every PBX it serves renders alike
(``Feature.shared_files``): ``kalliope/pjsip_trunk-<id>.conf`` (endpoint,
AOR, outbound auth, the registration when the carrier wants one, or an
identify by the carrier's address and port when it does not) and
``kalliope/extensions_trunk-<id>.conf`` (its inbound context: each number
or block to its PBX's number context, or refused while the PBX does not
serve). Per PBX, in its own file: ``kt-<slug>-did`` (a block's last digits
to the extension of that number, anything else of the block to the PBX's
default destination) and ``kt-<slug>-trunk-<id>``, the outbound context its
classes name to leave by that trunk. A trunk whose company does not serve
has no PJSIP objects (it registers and sends nothing) and refuses every
call. Trunk names are ``ktx-...``, a namespace no PBX's ``kt-<slug>`` can
reach. Every value passes the gate here.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate as gate
from kalliope_tel.dialplan.generator import shared_header
from kalliope_tel.dialplan.naming import GENERATED_DIR, context
from kalliope_tel.extensions.models import Extension, ExtensionStatus
from kalliope_tel.features.base import DialplanFragment
from kalliope_tel.tenancy.companies import serving_pbx_ids
from kalliope_tel.tenancy.models import Company, CompanyStatus, Pbx
from kalliope_tel.trunks.models import PhoneNumber, SipTrunk, Transport, trunks_serving

RING_SECONDS = 60
REGISTRATION_RETRY = 30
REGISTRATION_EXPIRY = 300


def trunk_name(trunk_id: int) -> str:
    """The trunk's PJSIP endpoint, AOR and registration."""
    return f"ktx-trunk-{int(trunk_id)}"


def trunk_files(trunk_id: int) -> tuple[str, str]:
    return (
        f"{GENERATED_DIR}/pjsip_trunk-{int(trunk_id)}.conf",
        f"{GENERATED_DIR}/extensions_trunk-{int(trunk_id)}.conf",
    )


def outbound_context(pbx: Pbx, trunk_id: int) -> str:
    """What a PBX's outbound class names to leave by this trunk."""
    return context(pbx.slug, "trunk", str(int(trunk_id)))


def block_pattern(number: PhoneNumber) -> str:
    prefix = gate.number(number.prefix, "what.number")
    return gate.pattern(f"_{prefix}{'X' * number.digits}" if number.digits else prefix)


def _company_serves(session: Session, company_id: int) -> bool:
    company = session.get(Company, company_id)
    while company is not None:
        if company.status is not CompanyStatus.ACTIVE:
            return False
        company = session.get(Company, company.parent_id) if company.parent_id else None
    return True


def _pjsip(trunk: SipTrunk) -> list[str]:
    name = trunk_name(trunk.id)
    host = gate.sip_host(trunk.endpoint)
    carrier = trunk.carrier
    params = "" if carrier.transport is Transport.UDP else f";transport={carrier.transport.value}"
    endpoint = [
        f"[{name}]",
        "type = endpoint",
        f"context = {name}-in",
        "disallow = all",
        f"allow = {','.join(gate.identifier(c) for c in carrier.codecs.split(','))}",
        f"aors = {name}",
        "direct_media = no",
        "rtp_symmetric = yes",
        "force_rport = yes",
        "rewrite_contact = yes",
    ]
    out = []
    if trunk.auth_required:
        user = gate.sip_user(trunk.username)
        # The From user is the account (carriers match it to the
        # credentials); the caller's number goes in P-Asserted-Identity.
        endpoint += [f"outbound_auth = {name}-auth", f"from_user = {user}", "send_pai = yes"]
        out += [
            "",
            f"[{name}-auth]",
            "type = auth",
            "auth_type = userpass",
            f"username = {user}",
            f"password = {gate.sip_password(trunk.password)}",
        ]
    out = [
        "",
        *endpoint,
        *out,
        "",
        f"[{name}]",
        "type = aor",
        f"contact = sip:{host}{params}",
        "qualify_frequency = 60",
    ]
    if carrier.registers:
        user = gate.sip_user(trunk.username)
        # 'line': the carrier's calls come back to the contact registered
        # with a line parameter that names this trunk, so two trunks to one
        # carrier address are never confused (an identify by address would).
        out += [
            "",
            f"[{name}]",
            "type = registration",
            f"outbound_auth = {name}-auth",
            f"server_uri = sip:{host}{params}",
            f"client_uri = sip:{user}@{host}{params}",
            f"contact_user = {user}",
            "line = yes",
            f"endpoint = {name}",
            f"retry_interval = {REGISTRATION_RETRY}",
            f"forbidden_retry_interval = {REGISTRATION_RETRY}",
            "auth_rejection_permanent = no",
            f"expiration = {REGISTRATION_EXPIRY}",
            "max_random_initial_delay = 1",
        ]
    else:
        out += ["", f"[{name}-identify]", "type = identify", f"endpoint = {name}", f"match = {host}"]
    return out


def _inbound(session: Session, trunk: SipTrunk, serving: set[int], company_serves: bool) -> list[str]:
    name = trunk_name(trunk.id)
    out = ["", f"; Calls from {gate.comment(trunk.carrier.name)} to the numbers of this trunk.", f"[{name}-in]"]
    if not company_serves:
        return [*out, "exten => _X.,1,Hangup(21)"]
    numbers = session.scalars(select(PhoneNumber).where(PhoneNumber.trunk_id == trunk.id).order_by(PhoneNumber.number))
    for number in numbers:
        pbx = session.get(Pbx, number.pbx_id)
        if pbx is None:
            continue
        pattern = block_pattern(number)
        if pbx.id in serving:
            out.append(f"exten => {pattern},1,Goto({context(pbx.slug, 'did')},${{EXTEN}},1)")
            continue
        sound = pbx.suspended_announcement
        cause = int(pbx.suspended_cause)
        if sound:
            out += [
                f"exten => {pattern},1,Progress()",
                f" same => n,Playback({gate.sound(sound)},noanswer)",
                f" same => n,Hangup({cause})",
            ]
        else:
            out.append(f"exten => {pattern},1,Hangup({cause})")
    return out


def render_trunk(session: Session, trunk: SipTrunk, serving: set[int]) -> dict[str, str]:
    pjsip_name, dialplan_name = trunk_files(trunk.id)
    header = shared_header(f"trunk {trunk.id} ({gate.comment(trunk.description)}, {gate.comment(trunk.carrier.name)})")
    company_serves = _company_serves(session, trunk.company_id)
    pjsip = [header] + (_pjsip(trunk) if company_serves else ["; Its company is suspended: no registration, no calls."])
    dialplan = [header, *_inbound(session, trunk, serving, company_serves)]
    return {pjsip_name: "\n".join(pjsip) + "\n", dialplan_name: "\n".join(dialplan) + "\n"}


def shared_files(session: Session, pbx: Pbx) -> dict[str, str]:
    """The files of every trunk that serves this PBX."""
    found = trunks_serving(session, pbx)
    if not found:  # most PBXs of a hotel or office install: no query more
        return {}
    serving = set(session.scalars(serving_pbx_ids()))
    files: dict[str, str] = {}
    for trunk in found:
        files.update(render_trunk(session, trunk, serving))
    return files


def shared_file_names(session: Session) -> set[str]:
    return {name for trunk_id in session.scalars(select(SipTrunk.id)) for name in trunk_files(trunk_id)}


def dialplan_fragment(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    """The PBX's number context and one outbound context per trunk serving it."""
    slug = gate.slug(pbx.slug)
    numbers = list(
        session.scalars(select(PhoneNumber).where(PhoneNumber.pbx_id == pbx.id).order_by(PhoneNumber.number))
    )
    serving_trunks = trunks_serving(session, pbx)
    if not numbers and not serving_trunks:
        return DialplanFragment()
    extensions = [
        gate.extension(number)
        for number in session.scalars(
            select(Extension.number)
            .where(Extension.pbx_id == pbx.id, Extension.status == ExtensionStatus.ACTIVE)
            .order_by(Extension.number)
        )
    ]
    entry = context(slug, "from-trunk")
    default = f"Goto({entry},{gate.extension(pbx.default_destination)},1)" if pbx.default_destination else "Hangup(1)"
    # A block jumps with its last digits to the context of extensions of
    # that many digits: the file grows with blocks plus extensions, not
    # with their product (11,000 blocks x 90 extensions was 55 MB).
    out = ["", "; The PBX's numbers: the last digits of a block name the extension.", f"[{context(slug, 'did')}]"]
    for number in numbers:
        size = int(number.digits)
        target = f"Goto({context(slug, 'did', str(size))},${{EXTEN:-{size}}},1)" if size else default
        out.append(f"exten => {block_pattern(number)},1,{target}")
    for size in sorted({int(n.digits) for n in numbers if n.digits}):
        out += [
            "",
            f"; Extensions of {size} digit(s), else the default destination.",
            f"[{context(slug, 'did', str(size))}]",
        ]
        out += [f"exten => {ext},1,Goto({entry},{ext},1)" for ext in extensions if len(ext) == size]
        out.append(f"exten => _{'X' * size},1,{default}")
    for trunk in serving_trunks:
        out += ["", f"; Out by trunk {gate.comment(trunk.description)}.", f"[{outbound_context(pbx, trunk.id)}]"]
        out.append("exten => _[0-9+]!,1,NoOp(out by the trunk)")
        # The caller's own number of a block when the extension is one of it.
        for number in numbers:
            if number.trunk_id == trunk.id and number.digits:
                prefix = gate.number(number.prefix, "what.number")
                out.append(
                    f" same => n,ExecIf($[${{LEN(${{KALLIOPE_FROM_EXTEN}})}} = {number.digits}]"
                    f"?Set(CALLERID(num)={prefix}${{KALLIOPE_FROM_EXTEN}}))"
                )
        out += [f" same => n,Dial(PJSIP/${{EXTEN}}@{trunk_name(trunk.id)},{RING_SECONDS})", " same => n,Hangup()"]
    return DialplanFragment([], out)
