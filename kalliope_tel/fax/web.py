"""Fax pages of the user portal: the register (with downloads) and the
send-fax form, for users with the fax role (their instances' faxes) and
administrators (every fax of the PBX)."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse

from kalliope_tel.container import Container
from kalliope_tel.fax import admin_web, config, jobs, register
from kalliope_tel.fax.models import InstanceUser
from kalliope_tel.files import safe_file_name
from kalliope_tel.localtime import parse_local_time
from kalliope_tel.users.models import Role, User
from kalliope_tel.web import bodies, deps
from kalliope_tel.web.app import pbx_page

API = "/api/v1/pbx/{pbx}/fax"
MAX_FILES = 10
MAX_FILE_BYTES = 25 * 1024 * 1024


def _acting(caller: deps.Caller, session: Any) -> User | None:
    """None for administrators (the register's "everything" view), else the user."""
    return None if Role.ADMIN in caller.principal.roles else caller.user(session)


def _upload_name(n: int, name: str) -> str:
    # The browser's file name only names the part; the suffix picks the converter.
    return f"{n:02d}-{safe_file_name(name, 80)}"


def router(container: Container) -> APIRouter:
    r = APIRouter(tags=["fax"])
    data_dir = container.settings.data_dir
    # The form's parts and their headers on top of the documents themselves.
    bodies.allow_large_body(API + "/send", MAX_FILES * MAX_FILE_BYTES + (1 << 20))

    @r.get(API + "/instances")
    def instances(caller: deps.FaxUser) -> list[dict[str, Any]]:
        """The fax lines the caller may send from or see."""
        from sqlalchemy import select

        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            rows = config.list_instances(session, pbx)
            user = _acting(caller, session)
            perms: dict[int, Any] = {}
            if user is not None:
                perms = dict(
                    session.execute(
                        select(InstanceUser.instance_id, InstanceUser.permission).where(InstanceUser.user_id == user.id)
                    ).all()
                )
            out = []
            for row in rows:
                if user is not None and row.id not in perms:
                    continue
                perm = perms.get(row.id)
                out.append(
                    {
                        "name": row.name,
                        "may_send": user is None or bool(perm and perm.may_send),
                        "may_receive": user is None or bool(perm and perm.may_receive),
                    }
                )
            return out

    @r.get(API + "/register")
    def fax_register(
        caller: deps.FaxUser, instance: str | None = None, direction: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Sent and received faxes the caller may see, newest first."""
        with deps.unit_of_work(caller.request) as session:
            return register.entries(
                session, caller.pbx(session), user=_acting(caller, session), instance=instance,
                direction=direction, limit=max(1, min(limit, 500)),
            )  # fmt: skip

    @r.post(API + "/jobs/{job_id}/cancel")
    def cancel_job(caller: deps.FaxUser, job_id: int) -> dict[str, Any]:
        """Cancel a queued or waiting fax (one being sent ends its call); a user
        cancels the faxes of the instances they may send from."""
        with deps.unit_of_work(caller.request) as session:
            job = jobs.cancel(session, caller.pbx(session), job_id, _acting(caller, session))
            return {"id": f"out-{job.id}", "state": job.state.value, "reason": job.reason}

    @r.get(API + "/register/{fax_id}/files/{kind}")
    def download(caller: deps.FaxUser, fax_id: str, kind: str) -> FileResponse:
        """The fax's document (``document``) or, for a sent fax, its transmission report (``report``)."""
        if kind not in ("document", "report"):
            raise deps.Refusal(404, "fax.file_kind")
        with deps.unit_of_work(caller.request) as session:
            files = register.files_of(session, caller.pbx(session), fax_id, user=_acting(caller, session))
        wanted = files[0] if kind == "document" else (files[1] if len(files) > 1 else None)
        if wanted is None:
            raise deps.Refusal(404, "fax.no_report", id=fax_id)
        stored, name = wanted
        path = data_dir / stored
        if not path.is_file():
            raise deps.Refusal(410, "fax.file_gone", id=fax_id)
        media = "application/pdf" if name.endswith(".pdf") else "image/tiff"
        return FileResponse(path, media_type=media, filename=name)

    @r.post(API + "/send", status_code=201)
    def send(
        caller: deps.FaxUser,
        instance: Annotated[str, Form(max_length=60)],
        number: Annotated[str, Form(max_length=40)],
        documents: Annotated[list[UploadFile], File()],
        at: Annotated[str, Form(max_length=40)] = "",
        resolution: Annotated[str, Form(pattern="^(fine|standard)$")] = "fine",
    ) -> dict[str, Any]:
        """Queue a fax: documents (PDF, DOC, DOCX, ODT, sent in order) are checked
        and converted now; the fax is sent at once or at ``at`` (PBX local time)."""
        from kalliope_tel.fax import conversion
        from kalliope_tel.fax.documents import DocumentRefused

        if not documents or len(documents) > MAX_FILES:
            raise deps.Refusal(400, "fax.documents_count", limit=MAX_FILES)
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            user = caller.user(session)
            jobs.check_number(
                session, pbx, jobs.check_sender(session, pbx, config.get_instance(session, pbx, instance), user), number
            )
            timezone = pbx.timezone
        when: datetime | None = parse_local_time(at, timezone) if at.strip() else None
        upload_dir = Path(tempfile.mkdtemp(prefix="upload-", dir=data_dir))
        try:
            paths = []
            for n, upload in enumerate(documents, start=1):
                target = upload_dir / _upload_name(n, upload.filename or "")
                with target.open("wb") as out:
                    copied = 0
                    while chunk := upload.file.read(1 << 20):
                        copied += len(chunk)
                        if copied > MAX_FILE_BYTES:
                            raise deps.Refusal(
                                413, "fax.document_too_large", name=upload.filename, mib=MAX_FILE_BYTES >> 20
                            )
                        out.write(chunk)
                paths.append(target)
            try:
                prepared = conversion.for_settings(container.settings).prepare(data_dir, paths, resolution)
            except DocumentRefused as exc:
                raise deps.Refusal(400, exc.code, **exc.params) from None
            except conversion.ConverterBusy as exc:
                raise deps.Refusal(503, exc.code, retry_after=60, **exc.params) from None
        finally:
            shutil.rmtree(upload_dir, ignore_errors=True)
        try:
            with deps.unit_of_work(caller.request) as session:
                pbx = caller.pbx(session)
                job = jobs.submit(
                    session, pbx, instance, caller.user(session), number, document=prepared.document,
                    pages=prepared.pages, sources=[d.filename or "document" for d in documents], at=when,
                )  # fmt: skip
                prepared.bind(data_dir, pbx.slug, job)
                return {"id": job.id, "state": job.state.value, "pages": job.pages, "number": job.number}
        except BaseException:
            shutil.rmtree(prepared.workdir, ignore_errors=True)
            raise

    @r.get("/pbx/{pbx}/fax", include_in_schema=False)
    def fax_page(request: Request, pbx: str) -> Response:
        return pbx_page(request, pbx, "fax.html", Role.FAX)

    r.include_router(admin_web.router(container))
    return r
