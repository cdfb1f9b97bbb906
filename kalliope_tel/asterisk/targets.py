"""Where a PBX's generated configuration goes, and how its rooms are dialled.

The default Asterisk takes ``asterisk_config_dir`` and
``asterisk_device_template`` from the settings (or the lab's own etc dir and
its room phones); a bound server (``pbx servers add``) has its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kalliope_tel.config import Settings
from kalliope_tel.errors import KalliopeError
from kalliope_tel.lab.instance import LabInstance

if TYPE_CHECKING:
    from kalliope_tel.tenancy.models import AsteriskServer

PRODUCTION_DEVICE = "PJSIP/{account}"
# The lab has no SIP phones: each room's "phone" is a dialplan context.
LAB_DEVICE = "Local/{extension}@kt-lab-room/n"


@dataclass(frozen=True)
class ConfigTarget:
    server: str  # "" for the default Asterisk
    directory: Path
    device_template: str


def config_target(settings: Settings, server: AsteriskServer | None) -> ConfigTarget:
    if server is None:
        using_lab = not settings.ari_url
        directory = settings.asterisk_config_dir
        if directory is None:
            if not using_lab:
                raise KalliopeError("set asterisk_config_dir (KALLIOPE_ASTERISK_CONFIG_DIR), e.g. /etc/asterisk")
            directory = LabInstance(settings.lab_root, settings.lab_name).dir / "etc"
        device = settings.asterisk_device_template or (LAB_DEVICE if using_lab else PRODUCTION_DEVICE)
        return ConfigTarget("", directory, device)
    if server.lab_name:
        directory = LabInstance(settings.lab_root, server.lab_name).dir / "etc"
        return ConfigTarget(server.name, directory, server.device_template or LAB_DEVICE)
    if not server.config_dir:
        raise KalliopeError(f"Asterisk server {server.name!r} has no config dir ('pbx servers add --config-dir')")
    return ConfigTarget(server.name, Path(server.config_dir), server.device_template or PRODUCTION_DEVICE)
