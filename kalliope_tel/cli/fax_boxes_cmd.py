"""``kalliope-tel fax boxes``: the Mail2Fax boxes (the mailboxes fax
requests are sent to), their login test, and the requests read from them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import console, print_json, print_table, read_secrets, run_in_pbx
from kalliope_tel.errors import KalliopeError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.mail2fax import boxes
    from kalliope_tel.mail2fax.models import Mail2FaxBox
    from kalliope_tel.tenancy.models import Pbx
else:
    from kalliope_tel.lazy import LazyModule

    boxes = LazyModule("kalliope_tel.mail2fax.boxes")

app = typer.Typer(help="Mail2Fax boxes: where fax requests are mailed to.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _row(box: Mail2FaxBox, session: Session | None = None) -> dict[str, Any]:
    """A box as shown: never its password or secret key, only that they are set."""
    row: dict[str, Any] = {
        "name": box.name,
        "enabled": box.enabled,
        "address": box.address,
        "protocol": box.protocol.value,
        "ssl": box.ssl,
        "server": box.server,
        "port": box.port,
        "timeout": box.timeout,
        "username": box.username,
        "password": "set" if box.password else "",
        "ca_file": box.ca_file,
        "folder": box.folder,
        "processed_folder": box.processed_folder,
        "poll_seconds": box.poll_seconds,
        "max_bytes": box.max_bytes,
        "pgp_fingerprint": box.pgp_fingerprint,
        "trusted_authserv_id": box.trusted_authserv_id,
        "holder": box.holder,
        "last_ok_at": box.last_ok_at,
        "last_error": box.last_error,
    }
    if session is not None:
        row["instances"] = [i.name for i in boxes.linked_instances(session, box)]
    return row


def _pgp(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    from kalliope_tel.mail2fax.pgp import key_fingerprint

    armored = path.read_text()
    return {"pgp_key": armored, "pgp_fingerprint": key_fingerprint(armored, secret=True)}


@app.command("add")
def add_cmd(
    name: str = typer.Argument(..., help="Box name (instances link to it by name)."),
    address: str = typer.Option(..., help="The box's e-mail address: requests must be sent To it."),
    server: str = typer.Option(..., help="IMAP or POP3 server."),
    protocol: str = typer.Option("imap", help="imap (IDLE: seconds) or pop3 (polled)."),
    ssl: bool = typer.Option(True, "--ssl/--starttls", help="Implicit TLS, or STARTTLS on the plain port."),
    port: int | None = typer.Option(None, help="Default: 993 IMAPS, 143 IMAP, 995 POP3S, 110 POP3."),
    timeout: int = typer.Option(30, help="Seconds for every network step."),
    username: str | None = typer.Option(None, help="Login (default: the address)."),
    folder: str = typer.Option("INBOX", help="IMAP folder read."),
    processed_folder: str = typer.Option("", help="IMAP: move handled requests here (default: delete them)."),
    poll_seconds: int = typer.Option(60, help="POP3: polling period; IMAP: IDLE renewal period."),
    max_bytes: int = typer.Option(20_000_000, help="Larger messages are refused unread."),
    ca_file: str = typer.Option("", help="A CA certificate to trust (a self-signed server)."),
    pgp_key: Path | None = typer.Option(None, help="Armored secret key: requests encrypted to it are read."),
    trusted_authserv_id: str = typer.Option(
        "", help="The receiving mail server whose Authentication-Results are believed (its authserv-id)."
    ),
    disabled: bool = typer.Option(False, "--disabled", help="Add it switched off."),
    password_stdin: bool = typer.Option(False, help="Read the password from standard input (else a prompt)."),
    as_json: bool = JSON,
) -> None:
    """Add a box. The password is never an argument (ps, shell history)."""
    (password,) = read_secrets(["box password"], from_stdin=password_stdin)
    values = dict(
        address=address,
        server=server,
        protocol=protocol,
        ssl=ssl,
        port=port,
        timeout=timeout,
        username=username,
        folder=folder,
        processed_folder=processed_folder,
        poll_seconds=poll_seconds,
        max_bytes=max_bytes,
        ca_file=ca_file,
        password=password,
        enabled=not disabled,
        trusted_authserv_id=trusted_authserv_id,
    ) | _pgp(pgp_key)
    data = run_in_pbx(lambda s, p: _row(boxes.add_box(s, p, name, **values)))
    if as_json:
        print_json(data)
    else:
        console.print(f"box {name} added ({data['protocol']} {data['server']}:{data['port']}, To {data['address']})")


@app.command("update")
def update_cmd(
    name: str,
    address: str | None = typer.Option(None),
    server: str | None = typer.Option(None),
    protocol: str | None = typer.Option(None),
    ssl: bool | None = typer.Option(None, "--ssl/--starttls"),
    port: int | None = typer.Option(None),
    timeout: int | None = typer.Option(None),
    username: str | None = typer.Option(None),
    folder: str | None = typer.Option(None),
    processed_folder: str | None = typer.Option(None),
    poll_seconds: int | None = typer.Option(None),
    max_bytes: int | None = typer.Option(None),
    ca_file: str | None = typer.Option(None),
    pgp_key: Path | None = typer.Option(None),
    trusted_authserv_id: str | None = typer.Option(None),
    enabled: bool | None = typer.Option(None, "--enabled/--disabled"),
    password_stdin: bool = typer.Option(False, help="Read a new password from standard input."),
    as_json: bool = JSON,
) -> None:
    """Change a box; serve reconnects it with the new settings."""
    values: dict[str, Any] = {
        k: v for k, v in locals().items() if k not in ("name", "password_stdin", "as_json", "pgp_key")
    }
    values |= _pgp(pgp_key)
    if password_stdin:
        (values["password"],) = read_secrets(["box password"], from_stdin=True)
    data = run_in_pbx(lambda s, p: _row(boxes.update_box(s, p, name, **values), s))
    if as_json:
        print_json(data)
    else:
        console.print(f"box {name} updated")


@app.command("list")
def list_cmd(as_json: bool = JSON) -> None:
    """The PBX's boxes and whether they work."""
    rows = run_in_pbx(lambda s, p: [_row(b, s) for b in boxes.list_boxes(s, p)])
    if as_json:
        print_json(rows)
        return
    print_table(
        "Mail2Fax boxes",
        ["name", "on", "address", "protocol", "server", "instances", "read by", "last error"],
        [
            [
                r["name"],
                "yes" if r["enabled"] else "no",
                r["address"],
                r["protocol"] + ("s" if r["ssl"] else "+starttls"),
                f"{r['server']}:{r['port']}",
                ", ".join(r["instances"]),
                r["holder"] or "-",
                (r["last_error"] or "")[:60],
            ]
            for r in rows
        ],
    )


@app.command("show")
def show_cmd(name: str, as_json: bool = JSON) -> None:
    """One box (password and key are shown as set or not, never their value)."""
    data = run_in_pbx(lambda s, p: _row(boxes.get_box(s, p, name), s))
    if as_json:
        print_json(data)
    else:
        print_table(f"box {name}", ["field", "value"], [[k, v] for k, v in data.items()])


@app.command("test")
def test_cmd(name: str, as_json: bool = JSON) -> None:
    """Log in and report what is waiting, without touching any message."""
    from kalliope_tel.mail2fax.boxes import record_health
    from kalliope_tel.mail2fax.mailbox import probe
    from kalliope_tel.mail2fax.watcher import box_access, network_errors

    access = run_in_pbx(lambda s, p: box_access(boxes.get_box(s, p, name)))
    try:
        result = probe(access)
        error = None
    except network_errors() as exc:
        error = f"{type(exc).__name__}: {exc}"
        result = {"ok": False, "error": error}
    run_in_pbx(lambda s, p: record_health(s, access.id, error))
    if as_json:
        print_json(result)
    elif result["ok"]:
        console.print(
            f"box {name}: logged in, {result['found']}; {result['messages']} message(s) waiting"
            f" ({result['oversized']} over the size limit), {result['seconds']} s"
        )
    if not result["ok"]:
        raise KalliopeError(f"box {name}: {error}")


@app.command("requests")
def requests_cmd(
    name: str,
    limit: int = typer.Option(50, help="The most recent N."),
    as_json: bool = JSON,
) -> None:
    """The requests read from a box: accepted (with their job), refused (with
    the reason the sender was sent) and dropped (unknown senders, not answered)."""

    def work(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from kalliope_tel.mail2fax.models import Mail2FaxRequest

        box = boxes.get_box(session, pbx, name)
        rows = session.scalars(
            select(Mail2FaxRequest)
            .where(Mail2FaxRequest.box_id == box.id)
            .order_by(Mail2FaxRequest.id.desc())
            .limit(limit)
        )
        return [
            {
                "id": r.id,
                "received_at": r.received_at,
                "sender": r.sender,
                "subject": r.subject,
                "outcome": r.outcome.value,
                "reason": r.reason,
                "job": r.job_id,
                "settled": r.settled,
            }
            for r in rows
        ]

    rows = run_in_pbx(work)
    if as_json:
        print_json(rows)
        return
    print_table(
        f"requests of box {name}",
        ["id", "received", "sender", "subject", "outcome", "job", "reason"],
        [
            [
                r["id"],
                f"{r['received_at']:%Y-%m-%d %H:%M:%S}",
                r["sender"],
                r["subject"],
                r["outcome"],
                r["job"] or "",
                r["reason"],
            ]
            for r in rows
        ],
    )


@app.command("remove")
def remove_cmd(name: str, as_json: bool = JSON) -> None:
    """Remove a box no instance uses (its request log goes with it)."""
    run_in_pbx(lambda s, p: boxes.remove_box(s, p, name))
    if as_json:
        print_json({"removed": name})
    else:
        console.print(f"box {name} removed")
