"""Every refusal the API answers, in the caller's language.

Errors of the services become HTTP statuses here, once, by kind (not found
404, conflict 409, not allowed 403, too many attempts 429, other refusals
400), with the message rendered from the catalogue (``detail``) next to its
``code`` and parameters, so a script can tell refusals apart without
parsing sentences. A body that fails validation answers 422 with a message
per field (``fields``), never pydantic's raw list.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kalliope_tel import catalogue
from kalliope_tel.errors import KalliopeError
from kalliope_tel.web.i18n import pick_language

_STATUS_BY_NAME = {
    "NotFound": 404,
    "AlarmNotFound": 404,
    "PbxNotFound": 404,
    "CompanyNotFound": 404,
    "AccountNotFound": 404,
    "StayNotFound": 404,
    "RoomOccupied": 409,
    "RoomFree": 409,
    "InUse": 409,
    "BoxNotFound": 404,
    "BoxInUse": 409,
    "NotAllowed": 403,
    "TooManyAttempts": 429,
}

# pydantic's error types, by the catalogue code that says it to a person.
_VALIDATION = {
    "missing": "validation.missing",
    "string_too_short": "validation.too_short",
    "too_short": "validation.too_short",
    "string_too_long": "validation.too_long",
    "too_long": "validation.too_long",
    "string_pattern_mismatch": "validation.pattern",
    "int_parsing": "validation.number",
    "int_type": "validation.number",
    "int_from_float": "validation.number",
    "float_parsing": "validation.number",
    "float_type": "validation.number",
    "greater_than_equal": "validation.at_least",
    "greater_than": "validation.at_least",
    "less_than_equal": "validation.at_most",
    "less_than": "validation.at_most",
    "bool_parsing": "validation.yes_no",
    "bool_type": "validation.yes_no",
    "date_parsing": "validation.date",
    "date_from_datetime_parsing": "validation.date",
    "datetime_parsing": "validation.date",
    "datetime_from_date_parsing": "validation.date",
    "time_parsing": "validation.time",
    "enum": "validation.one_of",
    "literal_error": "validation.one_of",
    "json_invalid": "validation.json",
    "model_attributes_type": "validation.json",
}


def status_for(exc: KalliopeError) -> int:
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    for cls in type(exc).__mro__:
        if cls.__name__ in _STATUS_BY_NAME:
            return _STATUS_BY_NAME[cls.__name__]
    return 400


def refusal(request: Request, exc: KalliopeError) -> JSONResponse:
    lang = pick_language(request)
    body: dict[str, Any] = {"detail": exc.text(lang), "code": exc.code or "error.other"}
    if exc.code:
        body["params"] = {k: str(v) for k, v in exc.params.items()}
    items = getattr(exc, "items", None)  # a file's rows, each refused for its own reason
    if isinstance(items, list) and items:
        body["errors"] = [
            {"line": line, "column": column, "code": error.code, "detail": error.text(lang)}
            for line, column, error in items
        ]
    retry_after = getattr(exc, "retry_after", None)  # TooManyAttempts, a busy converter
    headers = {"retry-after": str(retry_after)} if retry_after else None
    return JSONResponse(body, status_code=status_for(exc), headers=headers)


def field_errors(lang: str, errors: list[dict[str, Any]]) -> dict[str, str]:
    """One message per field: the first thing wrong with it."""
    out: dict[str, str] = {}
    for error in errors:
        where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "form")]
        field = ".".join(where) or "body"
        if field in out:
            continue
        ctx = error.get("ctx") or {}
        params = {
            "min": ctx.get("min_length", ctx.get("ge", ctx.get("gt", ""))),
            "max": ctx.get("max_length", ctx.get("le", ctx.get("lt", ""))),
            "expected": ctx.get("expected", ""),
        }
        out[field] = catalogue.render(lang, _VALIDATION.get(str(error.get("type")), "validation.invalid"), params)
    return out


def _label(lang: str, field: str) -> str:
    return catalogue.messages(lang).get(f"field.{field}") or field


def install(app: FastAPI) -> None:
    @app.exception_handler(KalliopeError)
    async def refused(request: Request, exc: KalliopeError) -> JSONResponse:
        return refusal(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        lang = pick_language(request)
        fields = field_errors(lang, list(exc.errors()))
        detail = "; ".join(f"{_label(lang, f)}: {m}" for f, m in fields.items())
        return JSONResponse({"detail": detail, "code": "validation", "fields": fields}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routes raise HTTPException with a catalogue code as the detail (a
        # plain sentence passes through as it is).
        detail = exc.detail
        code = detail if isinstance(detail, str) and catalogue.has(detail) else "error.other"
        if code != "error.other":
            detail = catalogue.render(pick_language(request), code, dict(getattr(exc, "params", None) or {}))
        return JSONResponse({"detail": detail, "code": code}, status_code=exc.status_code, headers=exc.headers)
