"""The phones' XML phonebooks over HTTP: ``/directory/<pbx>/<format>.xml``
(yealink, snom, grandstream), behind HTTP Basic with the PBX's phones'
credentials (user ``phones``, the same password their LDAP bind uses).
Anything else, an unknown PBX included, is 401: a stranger learns nothing
about which PBXs exist."""

from __future__ import annotations

import hmac

import structlog
from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from kalliope_tel.asterisk.realtime_web import basic_credentials
from kalliope_tel.container import Container
from kalliope_tel.directory import phonebooks
from kalliope_tel.directory.entries import directory_of
from kalliope_tel.directory.feature import rooms_lender
from kalliope_tel.directory.ldap_tree import PHONES
from kalliope_tel.directory.slapd import phones_password
from kalliope_tel.directory.sync import target_of
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.web import deps

log = structlog.get_logger(__name__)
REFUSED = {"www-authenticate": 'Basic realm="phonebook"'}


def router(container: Container) -> APIRouter:
    r = APIRouter(tags=["directory"])

    @r.get("/directory/{slug}/{kind}.xml", include_in_schema=False)
    def phonebook(request: Request, slug: str, kind: str) -> Response:
        """The PBX's phonebook for desk phones, in their own XML format."""
        target = target_of(container)
        given = request.headers.get("authorization", "").encode()
        if target is None or kind not in phonebooks.FORMATS or len(slug) > 40:
            return Response(status_code=401, headers=REFUSED)
        expected = basic_credentials(PHONES, phones_password(target.phones_secret, slug)).encode()
        if not hmac.compare_digest(given, expected):
            log.warning("directory.phonebook_refused", pbx=slug[:40], ip=request.client.host if request.client else "")
            return Response(status_code=401, headers=REFUSED)
        with deps.unit_of_work(request, writes=False) as session:
            pbx = session.scalars(select(Pbx).where(Pbx.slug == slug)).first()
            if pbx is None:
                return Response(status_code=401, headers=REFUSED)
            body = phonebooks.render(kind, directory_of(session, pbx, rooms_lender(container)))
        return Response(body, media_type="application/xml; charset=utf-8", headers={"cache-control": "no-store"})

    return r
