"""Files the project ships beside the code: Asterisk samples, static dialplan."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def asterisk_conf_dir() -> Path:
    """``asterisk-conf/`` of a checkout, or its copy inside an installed wheel."""
    for candidate in (_PACKAGE_DIR.parent / "asterisk-conf", _PACKAGE_DIR / "_asterisk_conf"):
        if (candidate / "extensions.conf").is_file():
            return candidate
    raise FileNotFoundError("asterisk-conf/ not found next to the package")


def static_dialplan_file() -> Path:
    from kalliope_tel import dialplan

    # Not resolved: in a checkout kalliope_tel/dialplan is a link to dialplan/.
    return Path(dialplan.__file__).parent / "extensions_kalliope.conf"
