"""A stay's call report (CSV or XLSX) in the browser, for receptionists and
administrators: the same report as ``kalliope-tel billing report``."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from kalliope_tel.billing import profiles_web, reports
from kalliope_tel.billing.records import BadCdr
from kalliope_tel.container import Container
from kalliope_tel.web import deps

API = "/api/v1/pbx/{pbx}/stays/{stay_id}/report.{kind}"


def router(container: Container) -> APIRouter:
    r = APIRouter(tags=["billing"])

    @r.get(API)
    def stay_report(caller: deps.Receptionist, stay_id: int, kind: str) -> FileResponse:
        """The stay's calls with their costs and totals, as a CSV or XLSX file."""
        if kind not in ("csv", "xlsx"):
            raise BadCdr("billing.report_kind")
        with deps.unit_of_work(caller.request) as session:
            report = reports.stay_report(session, caller.pbx(session), stay_id)
            folder = Path(tempfile.mkdtemp(prefix="kt-report-"))
            path = folder / f"room-{report.stay.room_extension}-stay-{stay_id}.{kind}"
            (reports.write_csv if kind == "csv" else reports.write_xlsx)(report, path)
        cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)  # once the file is sent
        return FileResponse(path, filename=path.name, background=cleanup)

    r.include_router(profiles_web.router(container))
    return r
