"""Mail2Fax boxes in the browser, for the PBX's administrators: add, edit,
remove, and the seed's ``test`` button (log in, count what is waiting, touch
nothing). The password is write-only: never in an answer, blank keeps it.
The same services as ``kalliope-tel fax boxes``."""

from __future__ import annotations

from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from kalliope_tel import catalogue
from kalliope_tel.container import Container
from kalliope_tel.mail2fax import boxes
from kalliope_tel.mail2fax.mailbox import probe
from kalliope_tel.mail2fax.models import Mail2FaxBox, Protocol
from kalliope_tel.mail2fax.pgp import PgpError, key_fingerprint
from kalliope_tel.mail2fax.watcher import box_access, network_errors
from kalliope_tel.users.services import get_user, logged
from kalliope_tel.web import deps, records
from kalliope_tel.web.i18n import pick_language
from kalliope_tel.web.records import Field as F

API = "/api/v1/pbx/{pbx}/mail2fax/boxes"
USERS = "/api/v1/pbx/{pbx}/users/{name}/pgp-key"
MAX_KEY_CHARS = 64_000  # an armored RSA-4096 public key with a few signatures is about 10 KB
# What a login that did not work raises (and our own wait running out).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *network_errors())


def _label(key: str) -> str:
    return "boxfield." + key


PAGE = records.page(
    records.Page(
        "admin/mail2fax",
        "boxes.title",
        (
            records.Records(
                "boxes",
                "boxes.list",
                "/mail2fax/boxes",
                "name",
                (
                    F("name", _label("name"), required=True, maxlength=80, fixed=True),
                    F("enabled", _label("enabled"), "bool"),
                    F("address", _label("address"), "email", True, maxlength=254),
                    F("protocol", _label("protocol"), "select", True, records.enum_options(Protocol, "protocol")),
                    F("ssl", _label("ssl"), "bool", listed=False),
                    F("server", _label("server"), required=True, maxlength=253),
                    F("port", _label("port"), "number", low=1, high=65535, listed=False, hint="boxes.port_hint"),
                    F("username", _label("username"), maxlength=200, listed=False),
                    F(
                        "password",
                        _label("password"),
                        "secret",
                        maxlength=200,
                        listed=False,
                        hint="boxes.password_hint",
                    ),
                    F("folder", _label("folder"), maxlength=200, listed=False),
                    F("processed_folder", _label("processed_folder"), maxlength=200, listed=False),
                    F("poll_seconds", _label("poll_seconds"), "number", low=1, high=3600, listed=False),
                    F("timeout", _label("timeout"), "number", low=1, high=600, listed=False),
                    F("max_bytes", _label("max_bytes"), "number", low=10_000, high=200_000_000, listed=False),
                    F("ca_file", _label("ca_file"), maxlength=500, listed=False),
                    F("trusted_authserv_id", _label("trusted_authserv_id"), maxlength=253, listed=False),
                    F("last_ok_at", _label("last_ok_at"), form=False),
                    F("last_error", _label("last_error"), form=False),
                ),
                actions=(records.Action("test", "boxes.test"),),
            ),
        ),
        intro="boxes.intro",
    )
)


class UserKey(BaseModel):
    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)


class BoxChange(BaseModel):
    enabled: bool | None = None
    address: str | None = Field(default=None, max_length=254)
    protocol: Literal["imap", "pop3"] | None = None
    ssl: bool | None = None
    server: str | None = Field(default=None, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, max_length=200)
    folder: str | None = Field(default=None, max_length=200)
    processed_folder: str | None = Field(default=None, max_length=200)
    poll_seconds: int | None = Field(default=None, ge=1, le=3600)
    timeout: int | None = Field(default=None, ge=1, le=600)
    max_bytes: int | None = Field(default=None, ge=10_000, le=200_000_000)
    ca_file: str | None = Field(default=None, max_length=500)
    trusted_authserv_id: str | None = Field(default=None, max_length=253)

    def values(self) -> dict[str, Any]:
        out = self.model_dump(exclude_none=True)
        if out.get("password") == "":
            out.pop("password")  # blank keeps the password set
        if out.get("username") == "":
            out.pop("username")  # blank: the address is the user name
        return out


class NewBox(BoxChange):
    name: str = Field(min_length=1, max_length=80)
    address: str = Field(min_length=3, max_length=254)
    server: str = Field(min_length=1, max_length=253)
    password: str = Field(min_length=1, max_length=200)


def box_view(box: Mail2FaxBox) -> dict[str, Any]:
    keys = ("name", "enabled", "address", "ssl", "server", "port", "username", "folder", "processed_folder")
    view: dict[str, Any] = {key: getattr(box, key) for key in keys}
    view |= {k: getattr(box, k) for k in ("poll_seconds", "timeout", "max_bytes", "ca_file", "trusted_authserv_id")}
    view["protocol"] = box.protocol.value
    view["password"] = ""  # write-only
    view["last_ok_at"] = box.last_ok_at.isoformat(timespec="seconds") if box.last_ok_at else ""
    view["last_error"] = box.last_error
    return view


def router(_container: Container) -> APIRouter:
    r = APIRouter()  # the boxes' routes are fax's, the users' keys users' (each route says)

    @r.get(API, tags=["fax"])
    def list_boxes(caller: deps.Admin) -> list[dict[str, Any]]:
        """The PBX's Mail2Fax boxes (passwords never shown) and how their last login went."""
        with deps.unit_of_work(caller.request) as session:
            return [box_view(b) for b in boxes.list_boxes(session, caller.pbx(session))]

    @r.post(API, status_code=201, tags=["fax"])
    def add_box(caller: deps.Admin, body: NewBox) -> dict[str, Any]:
        """Add a box; serve starts reading it within seconds."""
        values = body.values()
        name = values.pop("name")
        with deps.unit_of_work(caller.request) as session:
            return box_view(boxes.add_box(session, caller.pbx(session), name, **values))

    @r.patch(API + "/{name}", tags=["fax"])
    def change_box(caller: deps.Admin, name: str, body: BoxChange) -> dict[str, Any]:
        """Change what is given (a blank password keeps the one set)."""
        with deps.unit_of_work(caller.request) as session:
            return box_view(boxes.update_box(session, caller.pbx(session), name, **body.values()))

    @r.delete(API + "/{name}", status_code=204, tags=["fax"])
    def remove_box(caller: deps.Admin, name: str) -> None:
        """Remove a box no fax instance links to."""
        with deps.unit_of_work(caller.request) as session:
            boxes.remove_box(session, caller.pbx(session), name)

    @r.post(API + "/{name}/test", tags=["fax"])
    async def test_box(caller: deps.Admin, name: str, request: Request) -> dict[str, Any]:
        """Log in and count what is waiting, touching no message; the outcome is kept as the box's health."""
        with deps.unit_of_work(caller.request, writes=False) as session:
            access = box_access(boxes.get_box(session, caller.pbx(session), name))
        try:
            # The login blocks (imaplib, poplib): a worker thread, bounded by the box's own timeout.
            with anyio.fail_after(access.timeout * 3 + 5):
                result = await anyio.to_thread.run_sync(probe, access)
            error = None
        except NETWORK_ERRORS as exc:
            error = f"{type(exc).__name__}: {exc}"
        with deps.unit_of_work(caller.request, writes=True) as session:
            boxes.record_health(session, access.id, error)
        if error is not None:
            raise boxes.BoxError("box.test_failed", name=name, error=error)
        message = catalogue.render(pick_language(request), "box.test_ok", {"name": name, **result})
        return {"message": message, **result}

    @r.put(USERS, tags=["users"])
    def set_user_key(caller: deps.Admin, name: str, body: UserKey) -> dict[str, str]:
        """Set the user's PGP public key (Mail2Fax instances with PGP-signature authentication)."""
        if "PRIVATE KEY BLOCK" in body.key:
            raise PgpError("pgp.secret_given", field="key")
        fingerprint = key_fingerprint(body.key, secret=False)  # one key, checked in a scratch keyring
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            user = get_user(session, pbx, name)
            before = {"pgp_fingerprint": user.pgp_fingerprint}
            user.pgp_public_key, user.pgp_fingerprint = body.key, fingerprint
            logged(session, caller.actor, pbx, "log.pbx_user_pgp", name, before, {"pgp_fingerprint": fingerprint})
        return {"name": name, "pgp_fingerprint": fingerprint}

    @r.delete(USERS, tags=["users"])
    def remove_user_key(caller: deps.Admin, name: str) -> dict[str, str]:
        """Remove the user's PGP public key."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            user = get_user(session, pbx, name)
            before = {"pgp_fingerprint": user.pgp_fingerprint}
            user.pgp_public_key, user.pgp_fingerprint = "", ""
            logged(session, caller.actor, pbx, "log.pbx_user_pgp", name, before, {"pgp_fingerprint": ""})
        return {"name": name, "pgp_fingerprint": ""}

    @r.get("/pbx/{pbx}/admin/mail2fax", include_in_schema=False)
    def page(request: Request, pbx: str) -> Response:
        return records.render(request, pbx, PAGE)

    return r
