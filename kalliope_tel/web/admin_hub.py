"""The PBX's administration page: every administration page the user may
open (each feature declares its own), grouped, with a line on what each is
for; and, on every administration page, whether the last changes have
reached Asterisk."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from kalliope_tel.asterisk.config_state import state_of
from kalliope_tel.container import Container
from kalliope_tel.features.base import PageLink
from kalliope_tel.users.models import Role
from kalliope_tel.web import deps, navigation
from kalliope_tel.web.app import pbx_page


def router(_container: Container) -> APIRouter:
    r = APIRouter()

    @r.get("/pbx/{pbx}/admin", include_in_schema=False)
    def administration(request: Request, pbx: str) -> Response:
        principal = deps.current_principal(request)
        links = navigation.pages_for(request, principal) if principal else []
        pages = [link for link in links if link.administration]
        groups: dict[str, list[PageLink]] = {}
        for link in pages:  # in page order; a group where its first page is
            groups.setdefault(link.group, []).append(link)
        return pbx_page(request, pbx, "admin.html", Role.ADMIN, groups=list(groups.items()))

    @r.get("/api/v1/pbx/{pbx}/config-state", tags=["administration"])
    def config_state(caller: deps.Admin) -> dict[str, Any]:
        """Whether the PBX's last changes have reached its Asterisk: applied, applying, or failing (with why)."""
        with deps.unit_of_work(caller.request) as session:
            return state_of(session, caller.pbx(session))

    return r
