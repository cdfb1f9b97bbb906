"""Which pages a user may open: the navigation shows those only, and the
home page (``/``) is the first of them. Each feature declares its pages
(``Feature.pages``); the web does not know their rules."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from kalliope_tel.db.engine import transaction
from kalliope_tel.features.base import PageLink, Visitor
from kalliope_tel.web import deps
from kalliope_tel.web.access import Principal


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str  # catalogue key
    current: bool


# The core's pages, by the role that opens them (administration comes after the daily work).
CORE_PAGES = ((PageLink("admin/users", "nav.users", 90, "group.pbx", "about.users"), "admin"),)


def pages_for(request: Request, principal: Principal) -> list[PageLink]:
    container = deps.container_of(request)
    visitor = Visitor(principal.pbx_id, principal.user_id, frozenset(str(r) for r in principal.roles))
    links: list[PageLink] = [link for link, role in CORE_PAGES if visitor.may(role)]
    with transaction(container.sessions, read_only=True) as session:
        for feature in container.features:
            if feature.pages is not None:
                links.extend(feature.pages(session, visitor))
    return sorted(links, key=lambda link: link.order)


def navigation(request: Request, principal: Principal) -> list[NavItem]:
    """The top navigation: the daily pages, then one "Administration" entry
    for all the administration pages the user may open (the hub lists them)."""
    base = f"/pbx/{principal.pbx_slug}/"
    links = pages_for(request, principal)
    items = [
        NavItem(base + link.path, link.label, request.url.path == base + link.path)
        for link in links
        if not link.administration
    ]
    if any(link.administration for link in links):
        hub = base + "admin"
        items.append(NavItem(hub, "nav.admin", request.url.path.startswith(hub)))
    return items


def administration(request: Request, principal: Principal) -> list[NavItem]:
    """The administration pages, on an administration page (its second row of navigation)."""
    base = f"/pbx/{principal.pbx_slug}/"
    if not request.url.path.startswith(base + "admin"):
        return []
    return [
        NavItem(base + link.path, link.label, request.url.path == base + link.path)
        for link in pages_for(request, principal)
        if link.administration
    ]


def home(request: Request, principal: Principal) -> str | None:
    """Where the user lands: their first page, or None when their roles open none."""
    links = pages_for(request, principal)
    return f"/pbx/{principal.pbx_slug}/{links[0].path}" if links else None
