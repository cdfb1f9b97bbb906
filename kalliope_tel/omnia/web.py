"""Omnia's web: the Console's API and its page, as one router."""

from __future__ import annotations

from fastapi import APIRouter

from kalliope_tel.container import Container
from kalliope_tel.omnia import console_web, manager_web, pages, trunks_web


def router(container: Container) -> APIRouter:
    r = APIRouter()
    r.include_router(console_web.router(container))
    r.include_router(manager_web.router(container))
    r.include_router(trunks_web.router(container))
    r.include_router(pages.router(container))
    return r
