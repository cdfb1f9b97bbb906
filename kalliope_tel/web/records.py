"""Administration pages described, not hand-written: a page is a list of
sections, each a list of records (add, edit in a dialog, remove, the row's
own actions) or one settings form, over a feature's API. The browser builds
the forms and the lists from the description (``static/records.js``), so
every page looks and behaves the same; the feature keeps its routes and
services. Every label is a catalogue key (checked in both languages by
``tests/unit/test_records_catalogue.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fastapi import Request, Response
from sqlalchemy.orm import Session

from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import Role
from kalliope_tel.web import deps
from kalliope_tel.web.app import pbx_page

# "lines" is a list of strings edited one per line; "secret" is write-only (blank keeps it).
Kind = Literal[
    "text", "email", "tel", "number", "bool", "select", "multi", "textarea", "lines", "time", "date", "secret"
]


@dataclass(frozen=True)
class Field:
    """One value of a record or setting, named as the API names it."""

    name: str
    label: str  # catalogue key
    kind: Kind = "text"
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()  # (value, catalogue key)
    choices: str = ""  # or values the page lists at request time (the PBX's classes...)
    low: int | None = None
    high: int | None = None
    maxlength: int | None = None
    fixed: bool = False  # given when added, never edited (the record's name)
    listed: bool = True  # a column of the list
    form: bool = True  # in the forms (False: a figure the list only shows)
    hint: str = ""  # catalogue key of a line under the field


@dataclass(frozen=True)
class Action:
    """A button on each row: POST <record's URL>/<name> (``name`` may carry a
    query). The answer's ``message`` is shown, its ``once`` (a new
    password) in a dialog."""

    name: str
    label: str
    confirm: str = ""  # catalogue key of the question asked first ({name} is the record)
    danger: bool = False
    upload: str = ""  # file types: the button picks a file, POSTed as multipart ``file``
    download: bool = False  # GET <record's URL>/<name>: the answer is a file to save


@dataclass(frozen=True)
class Records:
    """The records under ``api`` (relative to /api/v1/pbx/<slug>): GET lists,
    POST adds, PATCH <api>/<key> edits, DELETE <api>/<key> removes."""

    name: str  # the section's id on the page
    title: str
    api: str
    key: str
    fields: tuple[Field, ...]
    intro: str = ""
    actions: tuple[Action, ...] = ()
    add: bool = True
    edit: bool = True
    remove: bool = True
    prefill: str = ""  # an API path whose answer fills the add form (a template's defaults)
    shown: str = ""  # the field that names a record to people (default: ``key``)
    kind: Literal["records"] = "records"


@dataclass(frozen=True)
class Settings:
    """One form over ``api``: GET reads, PUT changes what is sent."""

    name: str
    title: str
    api: str
    fields: tuple[Field, ...]
    intro: str = ""
    kind: Literal["settings"] = "settings"


@dataclass(frozen=True)
class Page:
    path: str  # under /pbx/<slug>/
    title: str
    sections: tuple[Records | Settings, ...]
    intro: str = ""
    extra_keys: tuple[str, ...] = field(default=())  # catalogue keys a section's API answers with

    def config(self, choices: dict[str, list[str]]) -> dict[str, Any]:
        return {"sections": [asdict(s) for s in self.sections], "choices": choices}

    def catalogue_keys(self) -> Iterator[str]:
        yield self.title
        yield from (k for k in (self.intro, *self.extra_keys) if k)
        for section in self.sections:
            yield section.title
            if section.intro:
                yield section.intro
            for f in section.fields:
                yield f.label
                yield from (key for _value, key in f.options)
                if f.hint:
                    yield f.hint
            for action in getattr(section, "actions", ()):
                yield action.label
                if action.confirm:
                    yield action.confirm


def enum_options(enum: Iterable[Any], prefix: str) -> tuple[tuple[str, str], ...]:
    """A select's options from an enum: each value, labelled ``<prefix>.<value>``."""
    return tuple((str(m.value), f"{prefix}.{m.value}") for m in enum)


# Every page described, for the catalogue test (pages register when their module loads).
PAGES: list[Page] = []


def page(spec: Page) -> Page:
    PAGES.append(spec)
    return spec


def choices(request: Request, pbx: str, lists: Callable[[Session, Pbx], dict[str, list[str]]]) -> dict[str, list[str]]:
    """The lists a page's selects offer (the PBX's classes, rooms...), read
    for PBX ``pbx`` when the caller is one of its users; nothing otherwise
    (the page itself then refuses or sends to log in)."""
    principal = deps.current_principal(request)
    seated = principal.at(pbx) if principal is not None else None
    if seated is None:
        return {}
    with deps.unit_of_work(request, writes=False) as session:
        row = session.get(Pbx, seated.pbx_id)
        return lists(session, row) if row is not None else {}


def render(
    request: Request, pbx: str, spec: Page, *roles: Role, choices: dict[str, list[str]] | None = None
) -> Response:
    """The page for PBX ``pbx``'s callers with ``roles`` (refused to others as every page is)."""
    return pbx_page(
        request,
        pbx,
        "records.html",
        *(roles or (Role.ADMIN,)),
        heading=spec.title,
        intro=spec.intro,
        config=spec.config(choices or {}),
    )
