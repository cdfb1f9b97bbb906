"""Where Asterisk is: the configured addresses, or the running lab's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kalliope_tel.config import Settings, split_bind
from kalliope_tel.errors import KalliopeError
from kalliope_tel.lab.instance import LabInstance

if TYPE_CHECKING:
    from kalliope_tel.tenancy.models import AsteriskServer

DEFAULT_AGI_BIND = "127.0.0.1:4573"
# The file asterisk-conf/cdr_custom.conf writes, under Asterisk's log dir.
CDR_FILE_NAME = "kalliope-cdr.json"


@dataclass(frozen=True)
class AsteriskEndpoints:
    source: str  # "settings" or "lab:<name>"
    ari_url: str
    ari_username: str
    ari_password: str
    ami_host: str
    ami_port: int
    ami_username: str
    ami_password: str
    agi_host: str
    agi_port: int
    # Asterisk's spool directory as Asterisk sees it, and as we do (a lab's
    # chroot); None: the same path (Asterisk on this machine, or a shared mount).
    spool: tuple[str, str] | None = None
    # Asterisk's durable CDR file (cdr_custom.conf) as this node reads it;
    # None: not readable from here (billing then records from AMI only).
    cdr_file: str | None = None

    def local_path(self, asterisk_path: str) -> str:
        """A file Asterisk wrote (res_fax), as this node reads it."""
        if self.spool is None:
            return asterisk_path
        inner, outer = self.spool
        if asterisk_path != inner and not asterisk_path.startswith(inner.rstrip("/") + "/"):
            raise KalliopeError(f"{asterisk_path} is not under Asterisk's spool {inner}")
        return outer + asterisk_path[len(inner) :]


def resolve_endpoints(settings: Settings) -> AsteriskEndpoints:
    """The settings' Asterisk when ``ari_url`` is set, else the named lab's."""
    if settings.ari_url:
        if not settings.ami_url:
            raise KalliopeError("ari_url is set but ami_url is not (KALLIOPE_AMI_URL=tcp://HOST:5038)")
        ami = urlsplit(settings.ami_url)
        agi_host, agi_port = split_bind(settings.agi_bind or DEFAULT_AGI_BIND, "agi_bind")
        return AsteriskEndpoints(
            "settings",
            settings.ari_url,
            settings.ari_username,
            settings.ari_password.get_secret_value(),
            ami.hostname or "127.0.0.1",
            ami.port or 5038,
            settings.ami_username,
            settings.ami_password.get_secret_value(),
            agi_host,
            agi_port,
            cdr_file=settings.cdr_file or None,
        )
    return _lab_endpoints(settings, settings.lab_name)


def _lab_endpoints(settings: Settings, lab_name: str) -> AsteriskEndpoints:
    lab = LabInstance(settings.lab_root, lab_name)
    state = lab.read_state()
    if state is None:
        raise KalliopeError(
            f"no Asterisk configured (ari_url) and lab {lab_name!r} was never started: "
            "run 'kalliope-tel lab up', or set KALLIOPE_ARI_URL and KALLIOPE_AMI_URL"
        )
    agi_host, agi_port = split_bind(settings.agi_bind or state.agi_bind, "agi_bind")
    return AsteriskEndpoints(
        f"lab:{state.name}",
        state.ari_url,
        state.ari_username,
        state.ari_password,
        "127.0.0.1",
        state.ami_port,
        state.ami_username,
        state.ami_password,
        agi_host,
        agi_port,
        (str(lab.inner / "spool"), str(lab.dir / "spool")),
        cdr_file=str(lab.dir / "log" / "cdr-custom" / CDR_FILE_NAME),
    )


def server_endpoints(settings: Settings, server: AsteriskServer | None) -> AsteriskEndpoints:
    """Where a PBX's Asterisk is: the default (None) or a bound server's row.

    FastAGI is served by this node for every Asterisk alike (one listener),
    so the AGI address always comes from the settings or the default lab.
    """
    if server is None:
        return resolve_endpoints(settings)
    if server.lab_name:
        found = _lab_endpoints(settings, server.lab_name)
    else:
        ami = urlsplit(server.ami_url)
        found = AsteriskEndpoints(
            "settings",
            server.ari_url,
            server.ari_username,
            server.ari_password,
            ami.hostname or "127.0.0.1",
            ami.port or 5038,
            server.ami_username,
            server.ami_password,
            "",
            0,
        )
    try:
        default = resolve_endpoints(settings)
        agi_host, agi_port = default.agi_host, default.agi_port
    except KalliopeError:
        agi_host, agi_port = split_bind(settings.agi_bind or DEFAULT_AGI_BIND, "agi_bind")
    return AsteriskEndpoints(
        f"server:{server.name}",
        found.ari_url,
        found.ari_username,
        found.ari_password,
        found.ami_host,
        found.ami_port,
        found.ami_username,
        found.ami_password,
        agi_host,
        agi_port,
        found.spool,
        found.cdr_file,
    )


def realtime_listener(settings: Settings) -> tuple[str, str, str]:
    """Where serve answers Asterisk's realtime questions, and the username and
    password Asterisk gives: the settings', or with the lab, the lab's."""
    if settings.realtime_bind:
        password = settings.realtime_password.get_secret_value()
        if not password:
            raise KalliopeError("realtime_bind is set but realtime_password is not (a secret: environment or file)")
        return settings.realtime_bind, settings.realtime_username, password
    if settings.ari_url:
        raise KalliopeError("pjsip_accounts = realtime needs realtime_bind and realtime_password")
    state = LabInstance(settings.lab_root, settings.lab_name).read_state()
    if state is None or not state.realtime_port:
        raise KalliopeError(f"lab {settings.lab_name!r} has no realtime port: restart it ('kalliope-tel lab up')")
    return state.realtime_bind, "asterisk", state.realtime_password
