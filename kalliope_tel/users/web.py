"""The PBX's users in the browser, for its administrators: the list, adding
one, changing address, name and roles, removing one, and their page.

Thin adapters over ``users.services`` (the CLI's services, the same rules):
who may call them is ``deps.Admin``, administrators of the PBX in the path.
An administrator cannot take their own administrator role away or remove
themselves (the PBX would be left with nobody to undo it).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from kalliope_tel.container import Container
from kalliope_tel.users import services
from kalliope_tel.users.models import Role
from kalliope_tel.users.services import UserError
from kalliope_tel.web import deps
from kalliope_tel.web.app import pbx_page

API = "/api/v1/pbx/{pbx}/users"


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._-]+$")
    email: str = Field(min_length=3, max_length=254)  # checked by the service (one rule with the CLI)
    full_name: str = Field(default="", max_length=120)
    roles: list[Role] = Field(default_factory=list, max_length=4)


class UserChange(BaseModel):
    email: str | None = Field(default=None, min_length=3, max_length=254)
    full_name: str | None = Field(default=None, max_length=120)
    roles: list[Role] | None = Field(default=None, max_length=4)


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["users"])

    @r.get(API)
    def list_users(caller: deps.Admin) -> list[dict[str, Any]]:
        """The PBX's users and their roles."""
        with deps.unit_of_work(caller.request) as session:
            return [services.as_dict(u) for u in services.list_users(session, caller.pbx(session))]

    @r.post(API, status_code=201)
    def add_user(caller: deps.Admin, body: NewUser) -> dict[str, Any]:
        """Add a user (their login is the e-mail address; a password comes later)."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            user = services.add_user(session, pbx, body.name, body.email, body.full_name)
            services.set_roles(session, pbx, user.name, set(body.roles))
            services.logged(session, caller.actor, pbx, "log.pbx_user_added", user.name, None, services.as_dict(user))
            return services.as_dict(user)

    @r.patch(API + "/{name}")
    def change_user(caller: deps.Admin, name: str, body: UserChange) -> dict[str, Any]:
        """Change a user's e-mail address, full name or roles (taking a role away ends their sessions)."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            before = services.as_dict(services.get_user(session, pbx, name))
            user = services.update_user(session, pbx, name, email=body.email, full_name=body.full_name)
            if body.roles is not None:
                if user.id == caller.principal.user_id and Role.ADMIN not in body.roles:
                    raise UserError("user.keep_own_admin")
                services.set_roles(session, pbx, name, set(body.roles))
            after = services.as_dict(user)
            services.logged(session, caller.actor, pbx, "log.pbx_user_updated", name, before, after)
            return after

    @r.delete(API + "/{name}")
    def remove_user(caller: deps.Admin, name: str) -> dict[str, Any]:
        """Remove a user (their faxes stay in the register, without a sender)."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            user = services.get_user(session, pbx, name)
            if user.id == caller.principal.user_id:
                raise UserError("user.keep_self")
            before = services.as_dict(user)
            services.remove_user(session, pbx, name)
            services.logged(session, caller.actor, pbx, "log.pbx_user_removed", name, before, None)
            return {"removed": name}

    @r.get("/pbx/{pbx}/admin/users", include_in_schema=False)
    def users_page(request: Request, pbx: str) -> Response:
        # What the running features offer on this page (Mail2Fax: the PGP key).
        extras = {k: v for f in deps.container_of(request).features for k, v in f.user_page.items()}
        config = {"roles": [r.value for r in Role], "pgp": False, **extras}
        return pbx_page(request, pbx, "users.html", Role.ADMIN, config=config)

    return r
