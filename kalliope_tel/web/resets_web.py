"""Password reset links in the browser: an administrator sends one to a user
(users page), the user opens it and chooses a password (a public page: the
token arrives in the URL's fragment and is posted in the body). The mails
are sent by every serve node's ``password-resets`` job."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel import catalogue
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.mail.owed import Owed, send_owed
from kalliope_tel.users import resets
from kalliope_tel.users.services import MAX_PASSWORD, logged
from kalliope_tel.web import deps
from kalliope_tel.web.app import form_page
from kalliope_tel.web.i18n import pick_language

API = "/api/v1/pbx/{pbx}/users"


class NewPassword(BaseModel):
    token: str = Field(min_length=20, max_length=100)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


def site_of(request: Request) -> str:
    """Where people reach the panels: the setting, else the address the administrator used."""
    configured = deps.container_of(request).settings.http_public_url
    return configured or str(request.base_url)


def router(_container: Container) -> APIRouter:
    r = APIRouter()

    @r.post(API + "/{name}/reset", tags=["users"])
    def send_reset(caller: deps.Admin, name: str) -> dict[str, str]:
        """Mail the user a link to choose a new password (valid 24 hours, once; a newer link replaces it)."""
        lang = pick_language(caller.request)
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            email = resets.request_reset(session, pbx, name, site_of(caller.request), lang)
            logged(session, caller.actor, pbx, "log.pbx_user_reset", name, None, {"email": email})
        return {"message": catalogue.render(lang, "reset.owed", {"name": name, "email": email})}

    @r.get(resets.PATH, include_in_schema=False)
    def reset_page(request: Request) -> Response:
        return form_page(request, "reset.html")

    @r.post("/api/v1/password-reset", tags=["core"])
    def complete_reset(request: Request, body: NewPassword) -> dict[str, str]:
        """Choose a new password with a reset link's token (the page's CSRF token, cookie and header, must match)."""
        deps.check_login_csrf(request)
        with deps.unit_of_work(request, writes=True) as session:
            user = resets.complete(session, body.token, body.password)
            return {"email": user.email}

    return r


def _claim(session: Session, settings: Settings, node: str) -> list[Owed]:
    return list(resets.claim(session, settings, node))


def _finish(session: Session, reset_id: int, node: str, error: str | None, permanent: bool) -> bool:
    return resets.finish(session, reset_id, node, error, permanent=permanent)


async def sender_loop(container: Container, node: str, tick: float = 5.0) -> None:
    """Mail the reset links owed (any node; each once)."""
    while True:
        await send_owed(container, node, _claim, _finish, what="users.reset", send_seconds=resets.SEND_SECONDS)
        await asyncio.sleep(tick)
