"""``kalliope-tel fax``: settings, archival paths, storages, templates,
instances and their users, sending, cancelling, the register, downloads and
archive decryption."""

from __future__ import annotations

import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import STATE, console, err_console, print_json, print_table, run_in_pbx
from kalliope_tel.errors import KalliopeError
from kalliope_tel.localtime import parse_local_time

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.fax import config, jobs, register
    from kalliope_tel.fax.models import FaxInstance
    from kalliope_tel.tenancy.models import Pbx
    from kalliope_tel.users.models import User
else:
    from kalliope_tel.lazy import LazyModule

    config = LazyModule("kalliope_tel.fax.config")
    jobs = LazyModule("kalliope_tel.fax.jobs")
    register = LazyModule("kalliope_tel.fax.register")

app = typer.Typer(help="Fax service: instances, users, sending, register, archive.", no_args_is_help=True)
archive_app = typer.Typer(help="Archival paths, remote storages, decryption.", no_args_is_help=True)
storage_app = typer.Typer(help="Remote (SFTP) storages for archival paths.", no_args_is_help=True)
instances_app = typer.Typer(help="Fax instances (a fax machine each).", no_args_is_help=True)
templates_app = typer.Typer(help="Fax instance templates.", no_args_is_help=True)
app.add_typer(archive_app, name="archive")
archive_app.add_typer(storage_app, name="storage")
app.add_typer(instances_app, name="instances")
app.add_typer(templates_app, name="templates")


def _mount_boxes() -> None:
    from kalliope_tel.cli.fax_boxes_cmd import app as boxes_app

    app.add_typer(boxes_app, name="boxes")


_mount_boxes()
JSON = typer.Option(False, "--json", help="Machine-readable output.")


@app.callback()
def fax_main(pbx: str = typer.Option(None, "--pbx", help="PBX slug (default: the default PBX).")) -> None:
    STATE.pbx_slug = pbx


def _acting(session: Session, pbx: Pbx, name: str | None) -> User | None:
    """The user named by --as (their permissions apply), or None: the admin."""
    from kalliope_tel.users.services import get_user

    return get_user(session, pbx, name) if name else None


def _show(data: Any, as_json: bool, title: str) -> None:
    if as_json:
        print_json(data)
    elif isinstance(data, dict):
        print_table(title, ["field", "value"], [[k, v] for k, v in data.items()])
    else:
        console.print(str(data))


# ------------------------------------------------------------------ settings
@app.command("settings")
def settings_cmd(
    max_inbound: int | None = typer.Option(None, help="Simultaneous inbound faxes (0: no limit)."),
    max_outbound: int | None = typer.Option(None, help="Simultaneous outbound faxes (0: no limit)."),
    max_total: int | None = typer.Option(None, help="Simultaneous faxes both ways (0: no limit)."),
    serial_number: str | None = typer.Option(None, help="The PBX's serial number (mail subjects)."),
    as_json: bool = JSON,
) -> None:
    """Show the fax settings, changing those given."""
    values = {k: v for k, v in locals().items() if k != "as_json"}

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        row = config.update_settings(session, pbx, **values)
        return {k: getattr(row, k) for k in ("max_inbound", "max_outbound", "max_total", "serial_number")}

    _show(run_in_pbx(work), as_json, "fax settings")


# ------------------------------------------------------------------ storages and archival paths
@storage_app.command("add")
def storage_add(
    name: str,
    host: str = typer.Option(..., help="SFTP server."),
    username: str = typer.Option(..., "--user"),
    key_file: Path = typer.Option(..., help="Private key (owner-only file)."),
    known_hosts: Path = typer.Option(..., help="known_hosts file holding the server's key."),
    port: int = typer.Option(22),
    directory: str = typer.Option(".", help="Base directory on the server."),
    as_json: bool = JSON,
) -> None:
    """Add an SFTP storage (key authentication, host key checked)."""

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        row = config.add_storage(
            session,
            pbx,
            name,
            host=host,
            username=username,
            key_file=key_file.absolute(),
            known_hosts=known_hosts.absolute(),
            port=port,
            directory=directory,
        )
        return {"name": row.name, "host": row.host, "port": row.port, "user": row.username, "directory": row.directory}

    _show(run_in_pbx(work), as_json, "remote storage")


@storage_app.command("list")
def storage_list(as_json: bool = JSON) -> None:
    rows = run_in_pbx(
        lambda s, p: [
            {"name": r.name, "host": r.host, "port": r.port, "user": r.username, "directory": r.directory}
            for r in config.list_storages(s, p)
        ]
    )
    if as_json:
        print_json(rows)
    else:
        print_table("remote storages", ["name", "host", "port", "user", "directory"], [list(r.values()) for r in rows])


def _path_row(row: Any, storages: dict[int, str]) -> dict[str, Any]:
    return {
        "position": row.position,
        "enabled": row.enabled,
        "kind": row.kind.value,
        "where": row.directory if row.kind.value == "local" else storages.get(row.storage_id or 0, "?"),
        "encryption": row.encryption.value,
    }


def _paths(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
    storages = {s.id: s.name for s in config.list_storages(session, pbx)}
    return [_path_row(r, storages) for r in config.list_archive_paths(session, pbx)]


@archive_app.command("add")
def archive_add(
    directory: str = typer.Option("", help="Local directory (absolute)."),
    storage: str = typer.Option("", help="Remote storage name."),
    encryption: str = typer.Option("none", help="none or builtin (AES-256-GCM, key: fax_archive_key)."),
    disabled: bool = typer.Option(False, "--disabled"),
    as_json: bool = JSON,
) -> None:
    """Append an archival path (local or remote)."""

    def work(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
        config.add_archive_path(
            session, pbx, directory=directory, storage=storage, encryption=encryption, enabled=not disabled
        )
        return _paths(session, pbx)

    _list_paths(run_in_pbx(work), as_json)


def _list_paths(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(rows)
    else:
        print_table("archival paths", ["#", "enabled", "kind", "where", "encryption"], [list(r.values()) for r in rows])


@archive_app.command("list")
def archive_list(as_json: bool = JSON) -> None:
    _list_paths(run_in_pbx(_paths), as_json)


@archive_app.command("enable")
def archive_enable(position: int, enabled: bool = typer.Option(True, "--on/--off"), as_json: bool = JSON) -> None:
    """Switch an archival path on or off."""

    def work(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
        config.set_archive_path_enabled(session, pbx, position, enabled)
        return _paths(session, pbx)

    _list_paths(run_in_pbx(work), as_json)


@archive_app.command("remove")
def archive_remove(position: int, as_json: bool = JSON) -> None:
    def work(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
        config.remove_archive_path(session, pbx, position)
        return _paths(session, pbx)

    _list_paths(run_in_pbx(work), as_json)


@archive_app.command("keygen")
def archive_keygen(
    output: Path = typer.Argument(..., help="File to write the key to (created owner-only)."), as_json: bool = JSON
) -> None:
    """Make a built-in encryption key; point fax_archive_key at its content."""
    import os

    from kalliope_tel.fax.crypto import new_key

    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(new_key() + "\n")
    if as_json:
        print_json({"key_file": str(output)})  # never the key itself
    else:
        err_console.print(f"key written to {output} (owner-only); set KALLIOPE_FAX_ARCHIVE_KEY from it")


@archive_app.command("decrypt")
def archive_decrypt(
    source: Path = typer.Argument(..., help="An archived file ending in .ktenc."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the document."),
    as_json: bool = JSON,
) -> None:
    """Read back an encrypted archive file with the fax_archive_key setting."""
    from kalliope_tel.fax import crypto

    key = crypto.load_key(STATE.settings.fax_archive_key.get_secret_value())
    data = crypto.decrypt(key, source.read_bytes())
    output.write_bytes(data)
    output.chmod(0o600)
    if as_json:
        print_json({"source": str(source), "output": str(output), "bytes": len(data)})
    else:
        err_console.print(f"{source.name}: {len(data)} bytes written to {output}")


# ------------------------------------------------------------------ templates and instances
INSTANCE_OPTIONS = {
    "local_ident": typer.Option(None, help="Local station id sent to the far end (20 chars)."),
    "header": typer.Option(None, help="Header line on each sent page (50 chars)."),
    "max_total": typer.Option(None, help="Simultaneous faxes both ways (0: no limit)."),
    "ecm": typer.Option(None, "--ecm/--no-ecm", help="Error correction mode."),
    "min_rate": typer.Option(None, help="Minimum rate (2400..14400 bit/s)."),
    "max_rate": typer.Option(None, help="Maximum rate (2400..14400 bit/s)."),
    "modem": typer.Option(None, help="Modems, e.g. v17,v29,v27ter."),
    "receive_enabled": typer.Option(None, "--receive/--no-receive", help="Reception on or off."),
    "max_inbound": typer.Option(None, help="Simultaneous inbound faxes (0: no limit)."),
    "send_enabled": typer.Option(None, "--send/--no-send", help="Sending on or off."),
    "max_outbound": typer.Option(None, help="Simultaneous outbound faxes (0: no limit)."),
    "outbound_class": typer.Option(None, help="Outbound routing class (hotel classes)."),
    "max_attempts": typer.Option(None, help="Transmission attempts before a fax fails."),
    "retry_minutes": typer.Option(None, help="Minutes between attempts."),
}


def _instance_data(session: Session, row: FaxInstance) -> dict[str, Any]:
    from dataclasses import asdict

    from kalliope_tel.extensions.models import OutboundClass

    values = asdict(config.effective(session, row))
    values.pop("pbx_id")
    class_id = values.pop("outbound_class_id")
    cls = session.get(OutboundClass, class_id) if class_id else None
    values["outbound_class"] = cls.name if cls else ""
    from kalliope_tel.fax.models import FaxTemplate

    template = session.get(FaxTemplate, row.template_id) if row.template_id else None
    values["template"] = template.name if template else ""
    values["users"] = {u.name: p.value for u, p in config.instance_users(session, row.id)}
    for key in (
        "mail2fax_box",
        "mail2fax_auth",
        "archive_prefix",
        "archive_path",
        "archive_suffix",
        "archive_separation",
        "mail2fax_encryption",
    ):
        value = getattr(row, key)
        values[key] = getattr(value, "value", value)
    values["mail2fax_pin"] = "set" if row.mail2fax_pin else ""
    return values


@templates_app.command("add")
def template_add(
    name: str,
    local_ident: str | None = INSTANCE_OPTIONS["local_ident"],
    header: str | None = INSTANCE_OPTIONS["header"],
    max_total: int | None = INSTANCE_OPTIONS["max_total"],
    ecm: bool | None = INSTANCE_OPTIONS["ecm"],
    min_rate: int | None = INSTANCE_OPTIONS["min_rate"],
    max_rate: int | None = INSTANCE_OPTIONS["max_rate"],
    modem: str | None = INSTANCE_OPTIONS["modem"],
    receive_enabled: bool | None = INSTANCE_OPTIONS["receive_enabled"],
    max_inbound: int | None = INSTANCE_OPTIONS["max_inbound"],
    send_enabled: bool | None = INSTANCE_OPTIONS["send_enabled"],
    max_outbound: int | None = INSTANCE_OPTIONS["max_outbound"],
    outbound_class: str | None = INSTANCE_OPTIONS["outbound_class"],
    max_attempts: int | None = INSTANCE_OPTIONS["max_attempts"],
    retry_minutes: float | None = INSTANCE_OPTIONS["retry_minutes"],
    as_json: bool = JSON,
) -> None:
    """Add a template: the values instances using it get unless they set their own."""
    values = {k: v for k, v in locals().items() if k not in ("name", "as_json")}
    data = run_in_pbx(lambda s, p: {"name": config.add_template(s, p, name, **values).name})
    _show(data, as_json, "fax template")


@templates_app.command("list")
def template_list(as_json: bool = JSON) -> None:
    rows = run_in_pbx(lambda s, p: [t.name for t in config.list_templates(s, p)])
    if as_json:
        print_json(rows)
    else:
        print_table("fax templates", ["name"], [[r] for r in rows])


def _instance_command(name: str, selection: str | None, values: dict[str, Any], *, create: bool) -> dict[str, Any]:
    pin = None
    if values.pop("mail2fax_pin_stdin", False):
        pin = sys.stdin.readline().strip()
    values = {k: v for k, v in values.items() if v is not None}
    if pin is not None:
        values["mail2fax_pin"] = pin

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        if create:
            if selection is None:
                raise KalliopeError("--selection is required")
            row = config.add_instance(session, pbx, name, selection, **values)
        else:
            if selection is not None:
                values["selection"] = selection
            row = config.update_instance(session, pbx, name, **values)
        return _instance_data(session, row)

    return run_in_pbx(work)


@instances_app.command("add")
def instance_add(
    name: str,
    selection: str = typer.Option(..., help="The numbering plan selection (extension) of the instance."),
    disabled: bool = typer.Option(False, "--disabled"),
    template: str | None = typer.Option(None, help="Template name."),
    local_ident: str | None = INSTANCE_OPTIONS["local_ident"],
    header: str | None = INSTANCE_OPTIONS["header"],
    max_total: int | None = INSTANCE_OPTIONS["max_total"],
    ecm: bool | None = INSTANCE_OPTIONS["ecm"],
    min_rate: int | None = INSTANCE_OPTIONS["min_rate"],
    max_rate: int | None = INSTANCE_OPTIONS["max_rate"],
    modem: str | None = INSTANCE_OPTIONS["modem"],
    receive_enabled: bool | None = INSTANCE_OPTIONS["receive_enabled"],
    max_inbound: int | None = INSTANCE_OPTIONS["max_inbound"],
    send_enabled: bool | None = INSTANCE_OPTIONS["send_enabled"],
    max_outbound: int | None = INSTANCE_OPTIONS["max_outbound"],
    outbound_class: str | None = INSTANCE_OPTIONS["outbound_class"],
    max_attempts: int | None = INSTANCE_OPTIONS["max_attempts"],
    retry_minutes: float | None = INSTANCE_OPTIONS["retry_minutes"],
    mail2fax_box: str | None = typer.Option(None, help="Mail2Fax box (its name; see fax boxes)."),
    mail2fax_auth: str | None = typer.Option(None, help="none, pin or pgp (signature by the sender's key)."),
    mail2fax_pin_stdin: bool = typer.Option(False, help="Read the Mail2Fax PIN from standard input."),
    mail2fax_encryption: str | None = typer.Option(None, help="none or pgp."),
    archive_prefix: str | None = typer.Option(None, help="none, pbx, instance, selection, year, year-month, date."),
    archive_path: str | None = typer.Option(None, help="Custom path under the archival paths."),
    archive_suffix: str | None = typer.Option(None, help="Like --archive-prefix."),
    archive_separation: str | None = typer.Option(None, help="none, before-prefix or after-suffix."),
    as_json: bool = JSON,
) -> None:
    """Add a fax instance; then 'asterisk apply' routes its selection."""
    values = {k: v for k, v in locals().items() if k not in ("name", "selection", "disabled", "as_json")}
    values["enabled"] = not disabled
    _show(_instance_command(name, selection, values, create=True), as_json, f"fax instance {name}")


@instances_app.command("update")
def instance_update(
    name: str,
    selection: str | None = typer.Option(None),
    enabled: bool | None = typer.Option(None, "--enabled/--disabled"),
    template: str | None = typer.Option(None, help="Template name ('' for none)."),
    local_ident: str | None = INSTANCE_OPTIONS["local_ident"],
    header: str | None = INSTANCE_OPTIONS["header"],
    max_total: int | None = INSTANCE_OPTIONS["max_total"],
    ecm: bool | None = INSTANCE_OPTIONS["ecm"],
    min_rate: int | None = INSTANCE_OPTIONS["min_rate"],
    max_rate: int | None = INSTANCE_OPTIONS["max_rate"],
    modem: str | None = INSTANCE_OPTIONS["modem"],
    receive_enabled: bool | None = INSTANCE_OPTIONS["receive_enabled"],
    max_inbound: int | None = INSTANCE_OPTIONS["max_inbound"],
    send_enabled: bool | None = INSTANCE_OPTIONS["send_enabled"],
    max_outbound: int | None = INSTANCE_OPTIONS["max_outbound"],
    outbound_class: str | None = INSTANCE_OPTIONS["outbound_class"],
    max_attempts: int | None = INSTANCE_OPTIONS["max_attempts"],
    retry_minutes: float | None = INSTANCE_OPTIONS["retry_minutes"],
    mail2fax_box: str | None = typer.Option(None),
    mail2fax_auth: str | None = typer.Option(None),
    mail2fax_pin_stdin: bool = typer.Option(False),
    mail2fax_encryption: str | None = typer.Option(None),
    archive_prefix: str | None = typer.Option(None),
    archive_path: str | None = typer.Option(None),
    archive_suffix: str | None = typer.Option(None),
    archive_separation: str | None = typer.Option(None),
    as_json: bool = JSON,
) -> None:
    """Change a fax instance."""
    values = {k: v for k, v in locals().items() if k not in ("name", "selection", "as_json")}
    _show(_instance_command(name, selection, values, create=False), as_json, f"fax instance {name}")


@instances_app.command("list")
def instance_list(as_json: bool = JSON) -> None:
    rows = run_in_pbx(lambda s, p: [_instance_data(s, r) for r in config.list_instances(s, p)])
    if as_json:
        print_json(rows)
    else:
        print_table(
            "fax instances",
            ["name", "selection", "enabled", "receive", "send", "class", "users"],
            [
                [
                    r["name"],
                    r["selection"],
                    r["enabled"],
                    r["receive_enabled"],
                    r["send_enabled"],
                    r["outbound_class"],
                    ", ".join(f"{u}:{p}" for u, p in r["users"].items()),
                ]
                for r in rows
            ],
        )


@instances_app.command("show")
def instance_show(name: str, as_json: bool = JSON) -> None:
    _show(run_in_pbx(lambda s, p: _instance_data(s, config.get_instance(s, p, name))), as_json, f"fax instance {name}")


@instances_app.command("remove")
def instance_remove(name: str, as_json: bool = JSON) -> None:
    run_in_pbx(lambda s, p: config.remove_instance(s, p, name))
    _show({"removed": name}, as_json, "fax instance")


@instances_app.command("allow")
def instance_allow(
    name: str,
    user: str = typer.Argument(...),
    permission: str = typer.Argument(..., help="receive, send or both."),
    as_json: bool = JSON,
) -> None:
    """Enable a user on an instance with a permission."""
    run_in_pbx(lambda s, p: config.set_permission(s, p, name, user, permission))
    _show({"instance": name, "user": user, "permission": permission}, as_json, "fax permission")


@instances_app.command("revoke")
def instance_revoke(name: str, user: str, as_json: bool = JSON) -> None:
    run_in_pbx(lambda s, p: config.revoke(s, p, name, user))
    _show({"instance": name, "user": user, "permission": None}, as_json, "fax permission")


# ------------------------------------------------------------------ sending
@app.command("send")
def send_cmd(
    files: list[Path] = typer.Argument(..., help="PDF, DOC, DOCX, ODT (or RTF, images), sent in order."),
    instance: str = typer.Option(..., "--instance"),
    to: str = typer.Option(..., "--to", help="The number to fax."),
    as_user: str | None = typer.Option(None, "--as", help="The sending user (their permission is checked)."),
    at: str | None = typer.Option(None, "--at", help="'YYYY-MM-DD HH:MM' in the PBX's time zone (default: now)."),
    resolution: str = typer.Option("fine", help="fine (204x196) or standard (204x98)."),
    as_json: bool = JSON,
) -> None:
    """Queue a fax: documents are checked and converted now, sent by serve."""
    from kalliope_tel.fax import conversion
    from kalliope_tel.fax.documents import DocumentRefused

    settings = STATE.settings

    def check(session: Session, pbx: Pbx) -> str:
        # Refuse before converting anything: permission, instance, number.
        user = _acting(session, pbx, as_user)
        row = config.get_instance(session, pbx, instance)
        values = jobs.check_sender(session, pbx, row, user)
        jobs.check_number(session, pbx, values, to)
        return pbx.timezone

    timezone = run_in_pbx(check)
    when: datetime | None = parse_local_time(at, timezone) if at else None
    try:
        prepared = conversion.for_settings(settings).prepare(
            settings.data_dir,
            files,
            resolution,
            progress=lambda name, n, total: err_console.print(f"converting {name} ({n}/{total})"),
            wait=True,
        )
    except DocumentRefused as exc:
        raise KalliopeError(f"refused: {exc}") from None

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        user = _acting(session, pbx, as_user)
        job = jobs.submit(
            session,
            pbx,
            instance,
            user,
            to,
            document=prepared.document,
            pages=prepared.pages,
            sources=[f.name for f in files],
            at=when,
        )
        prepared.bind(settings.data_dir, pbx.slug, job)
        return {
            "id": job.id,
            "state": job.state.value,
            "pages": job.pages,
            "number": job.number,
            "at": job.next_attempt_at,
        }

    try:
        data = run_in_pbx(work)
    except BaseException:
        shutil.rmtree(prepared.workdir, ignore_errors=True)
        raise
    if as_json:
        print_json(data)
    else:
        console.print(f"fax {data['id']} queued: {data['pages']} page(s) to {data['number']}")


@app.command("cancel")
def cancel_cmd(
    job_id: int,
    as_user: str | None = typer.Option(None, "--as", help="Acting user (must be the sender or may send)."),
    as_json: bool = JSON,
) -> None:
    """Cancel a queued fax (one being sent is hung up by its node)."""

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        job = jobs.cancel(session, pbx, job_id, _acting(session, pbx, as_user))
        return {"id": job.id, "state": job.state.value, "reason": job.reason}

    _show(run_in_pbx(work), as_json, "fax job")


# ------------------------------------------------------------------ register
@app.command("register")
def register_cmd(
    instance: str | None = typer.Option(None, "--instance"),
    direction: str | None = typer.Option(None, "--direction", help="in or out."),
    as_user: str | None = typer.Option(None, "--as", help="Show only what this user may see."),
    limit: int = typer.Option(100, help="Newest first, at most this many."),
    as_json: bool = JSON,
) -> None:
    """Sent and received faxes, newest first."""

    def work(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
        user = _acting(session, pbx, as_user)
        return register.entries(session, pbx, user=user, instance=instance, direction=direction, limit=limit)

    rows = run_in_pbx(work)
    if as_json:
        print_json(rows)
        return
    print_table(
        "fax register",
        ["id", "dir", "when", "instance", "number", "state", "pages", "attempts", "reason"],
        [
            [
                r["id"],
                r["direction"],
                r["when"],
                r["instance"],
                r["number"],
                r["state"],
                r["pages"],
                r["attempts"],
                r["reason"],
            ]
            for r in rows
        ],
    )


@app.command("download")
def download_cmd(
    fax_id: str = typer.Argument(..., help="A register id: out-12 or in-7."),
    output: Path = typer.Option(Path("."), "-o", "--output", help="Directory to write into."),
    as_user: str | None = typer.Option(None, "--as"),
    as_json: bool = JSON,
) -> None:
    """Write a fax's document (and, for a sent fax, its report) into a directory."""

    def work(session: Session, pbx: Pbx) -> list[tuple[str, str]]:
        user = _acting(session, pbx, as_user)
        return register.files_of(session, pbx, fax_id, user=user)

    written = []
    for stored, name in run_in_pbx(work):
        target = output / name
        shutil.copyfile(STATE.settings.data_dir / stored, target)
        target.chmod(0o600)
        written.append(str(target))
    if as_json:
        print_json(written)
    else:
        for path in written:
            console.print(path)
