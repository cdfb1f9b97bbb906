"""The fax service as serve runs it: the async face of the synchronous
services (each call one transaction on a worker thread), shared by the fax
Stasis application, the res_fax FastAGI handlers and the background jobs.
No ARI here: calls are placed by the engine the sender job is given."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TypeVar

import structlog

from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.fax import deliveries, jobs, pending
from kalliope_tel.fax.config import get_settings
from kalliope_tel.fax.inbound import Admission, Reception, admit_inbound, record_received, registered
from kalliope_tel.fax.models import (
    ArchivePath,
    DeliveryKind,
    Direction,
    FaxInstance,
    FaxJob,
    FaxReceived,
    JobState,
    RemoteStorage,
)
from kalliope_tel.fax.report import report_data, write_report
from kalliope_tel.fax.store import pdf_of
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import for_each_pbx, get_pbx

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.container import Container

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Delivered:
    id: int
    error: str | None
    permanent: bool = False


# One delivery's time: an SMTP exchange or an SFTP copy of a fax takes
# seconds; past this the server has stalled. Well under deliveries.LEASE.
DELIVERY_SECONDS = 120.0


class FaxService:
    def __init__(self, container: Container, node: str) -> None:
        self.container = container
        self.node = node
        self.data_dir = container.settings.data_dir
        # Slots of this node older than this are a previous run's calls.
        self.started_at = utcnow()
        self._registering: set[str] = set()  # pending notes being tried now

    async def _tx(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with transaction(self.container.sessions) as session:
                return work(session)

        return await asyncio.to_thread(run)

    # ------------------------------------------------------------ inbound
    async def admit(self, pbx_slug: str, instance_id: int, call_id: str) -> Admission:
        return await self._tx(lambda s: admit_inbound(s, get_pbx(s, pbx_slug), instance_id, self.node, call_id))

    async def received(
        self, pbx_slug: str, instance_id: int, slot_id: int | None, reception: Reception, tiff: Path | None
    ) -> int | None:
        """Register the fax and owe its mails and copies: a note on disk
        first (``pending``), then a few quick tries; past them (the database
        away) the deliveries loop keeps trying. The fax id, or None when the
        registration was left to that loop."""
        reception = dataclasses.replace(reception, node=reception.node or self.node)
        note = await asyncio.to_thread(pending.write, self.data_dir, pbx_slug, instance_id, slot_id, reception, tiff)
        for delay in (0.5, 1.0, 2.0, 0.0):
            fax_id = await self._register(note)
            if fax_id is not None or not delay:
                return fax_id
            await asyncio.sleep(delay)
        return None

    async def register_pending(self) -> int:
        """Receptions whose registration failed before (this node's notes):
        tried again; returns how many got in."""
        done = 0
        for path in await asyncio.to_thread(pending.waiting, self.data_dir):
            if path.stem in self._registering:
                continue
            note = await asyncio.to_thread(pending.load, path)
            note.tries += 1
            if await self._register(note) is not None:
                done += 1
            elif note.tries >= pending.GIVE_UP_AFTER:
                aside = await asyncio.to_thread(pending.give_up, note)
                log.error("fax.received_given_up", call=note.reception.call_id, note=str(aside))
            else:
                await asyncio.to_thread(pending.save, note)
        return done

    async def _register(self, note: pending.Pending) -> int | None:
        self._registering.add(note.path.stem)
        try:
            return await self._register_once(note)
        except Exception as exc:  # the database away, a disk error: the note stays for the next pass
            log.warning("fax.received_not_registered", call=note.reception.call_id, tries=note.tries + 1,
                        error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            return None
        finally:
            self._registering.discard(note.path.stem)

    async def _register_once(self, note: pending.Pending) -> int:
        reception, tiff = note.reception, note.tiff
        # A row without pages (the call recorded as lost by another node) does
        # not count when this note has them: they take its place, never dropped.
        has_pages = tiff is not None and reception.pages > 0
        known = await self._tx(lambda s: registered(s, note.pbx_slug, reception.call_id, with_pages=has_pages))
        if known is None:
            pdf = None
            if tiff is not None and reception.pages > 0:
                try:
                    pdf = await asyncio.to_thread(_tiff_to_pdf, tiff)
                except Exception as exc:  # a broken TIFF: the reception is recorded, with why
                    log.warning("fax.received_unreadable", call=reception.call_id, error=str(exc))
                    reception = _with_reason(reception, f"pages unreadable: {exc}")

            def record(s: Session) -> int:
                # Once per call: a try whose commit's answer was lost finds its own row.
                again = registered(s, note.pbx_slug, reception.call_id, with_pages=has_pages)
                if again is not None:
                    return again
                pbx = get_pbx(s, note.pbx_slug)
                return record_received(s, pbx, note.instance_id, note.slot_id, reception, pdf, self.data_dir).id

            known = await self._tx(record)
            log.info("fax.received", pbx=note.pbx_slug, fax=known, ok=reception.ok, pages=reception.pages,
                     media=reception.media)  # fmt: skip
        if tiff is not None:
            await asyncio.to_thread(tiff.unlink, missing_ok=True)
        await asyncio.to_thread(note.path.unlink, missing_ok=True)
        return known

    # ------------------------------------------------------------ outbound
    async def claim(self, asterisk: str | None, room: int) -> list[jobs.SendClaim]:
        """Due jobs of the PBXs on ``asterisk``, up to ``room`` in all."""
        claims: list[jobs.SendClaim] = []

        def work(session: Session, pbx: Pbx) -> None:
            claims.extend(jobs.claim_due(session, pbx, self.node, room - len(claims)))

        # A suspended customer's PBXs send nothing (their jobs wait for the resume).
        await asyncio.to_thread(for_each_pbx, self.container.sessions, work, asterisk=asterisk, serving_only=True)
        return claims

    async def sending(self, claim: jobs.SendClaim) -> None:
        await self._tx(lambda s: jobs.mark_sending(s, claim.job_id, claim.attempt))

    async def attempt_done(self, claim: jobs.SendClaim, result: jobs.AttemptResult) -> JobState:
        state = await self._tx(
            lambda s: jobs.complete_attempt(s, claim.job_id, claim.attempt, result, claim.slot_id).state
        )
        log.info(
            "fax.attempt_done", job=claim.job_id, attempt=claim.attempt, ok=result.ok, reason=result.reason, state=state
        )
        return state  # a final state owes its report in the same transaction (jobs.complete_attempt)

    async def job_final(self, job_id: int) -> None:
        """The report, its mail to the sender and the archive copies, once:
        the work of a REPORT delivery, which any node may claim (again, after
        a node died half way: the report is rewritten in place, and the mail
        and copies are owed only by the transaction that records it)."""
        info = await self._tx(lambda s: report_data(s, job_id))
        if info is None:
            return
        report = await asyncio.to_thread(
            write_report, self.data_dir / info.target, info.data, self.data_dir / info.first_page
        )

        def owe(session: Session) -> None:
            from kalliope_tel.fax.store import relative

            job = session.get(FaxJob, job_id, with_for_update=True)
            assert job is not None
            if job.report:
                return  # another claim of this report got there first
            job.report = relative(self.data_dir, report)
            pbx = session.get(Pbx, job.pbx_id)
            assert pbx is not None
            if info.sender_email:
                deliveries.owe_mail(session, pbx, Direction.OUTBOUND, job.id, info.sender_email)
            deliveries.owe_archive(
                session, pbx, Direction.OUTBOUND, job.id, {"document": pdf_of(job.document), "report": job.report}
            )

        await self._tx(owe)

    async def cancelled(self, job_ids: list[int]) -> set[int]:
        return await self._tx(lambda s: jobs.cancelled_among(s, job_ids))

    async def abandoned(self, node: str | None) -> list[jobs.Abandoned]:
        return await self._tx(lambda s: jobs.abandoned_attempts(s, node=node))

    async def abandon(self, item: jobs.Abandoned, why: str) -> None:
        await self._tx(lambda s: jobs.abandon(s, item, why).state)
        log.warning("fax.attempt_abandoned", job=item.job_id, attempt=item.attempt, node=item.node, why=why)

    async def forget_dead_slots(self) -> int:
        """Calls of nodes that stopped beating: slots freed, receptions registered as failed."""
        from kalliope_tel.fax.limits import forget_dead_slots

        return await self._tx(forget_dead_slots)

    async def forget_own_slots(self) -> int:
        from kalliope_tel.fax.limits import forget_node_slots

        return await self._tx(lambda s: forget_node_slots(s, self.node, self.started_at))

    # ------------------------------------------------------------ deliveries
    async def deliver_due(self, limit: int = 20) -> int:
        """Claim what is due and carry each out on its own: each is
        time-boxed and finished as soon as it ends, so a stalled mail server
        or SFTP host holds up its own deliveries only, and every outcome is
        recorded well within the lease (no other node sends it meanwhile)."""
        claims = await self._tx(lambda s: deliveries.claim(s, self.node, limit))
        await asyncio.gather(*(self._deliver_and_finish(c) for c in claims))
        return len(claims)

    async def _deliver_and_finish(self, claim: deliveries.DeliveryClaim) -> None:
        try:
            item = await asyncio.wait_for(self._deliver(claim), DELIVERY_SECONDS)
        except TimeoutError:
            log.warning("fax.delivery_timed_out", delivery=claim.id, kind=claim.kind, seconds=DELIVERY_SECONDS)
            item = Delivered(claim.id, f"not done within {DELIVERY_SECONDS:.0f} s (the server stalled)")
        ours = await self._tx(lambda s: deliveries.finish(s, claim, self.node, item.error, permanent=item.permanent))
        if not ours:
            log.warning("fax.delivery_claim_lost", delivery=claim.id, kind=claim.kind)

    async def _deliver(self, claim: deliveries.DeliveryClaim) -> Delivered:
        from kalliope_tel.mail.smtp import MailNotSent, send

        try:
            if claim.kind is DeliveryKind.REPORT:
                await self.job_final(claim.fax_id)
                log.info("fax.report_written", delivery=claim.id, job=claim.fax_id)
            elif claim.kind in (DeliveryKind.MAIL, DeliveryKind.NOTICE):
                msg = await self._tx(lambda s: _mail_for(s, claim, self.container.settings.mail_from, self.data_dir))
                await send(self.container.settings, msg)
                log.info("fax.mail_sent", delivery=claim.id, fax=claim.fax_id, direction=claim.direction)
            else:
                where = await self._archive(claim)
                log.info("fax.archived", delivery=claim.id, fax=claim.fax_id, where=where)
            return Delivered(claim.id, None)
        except MailNotSent as exc:
            log.warning("fax.mail_failed", delivery=claim.id, attempt=claim.attempt, error=str(exc))
            return Delivered(claim.id, str(exc), exc.permanent)
        except Exception as exc:
            log.warning(
                "fax.delivery_failed", delivery=claim.id, kind=claim.kind, attempt=claim.attempt, error=str(exc)
            )
            return Delivered(claim.id, f"{type(exc).__name__}: {exc}")

    async def _archive(self, claim: deliveries.DeliveryClaim) -> list[str]:
        from kalliope_tel.fax import archive

        plan = await self._tx(lambda s: _archive_plan(s, claim))
        key = self.container.settings.fax_archive_key.get_secret_value()
        written = []
        for rel_file, name in plan.files:
            data = await asyncio.to_thread((self.data_dir / rel_file).read_bytes)
            blob, final_name = archive.sealed(data, name, plan.path.encryption, key)
            if plan.storage is None:
                out = await asyncio.to_thread(
                    archive.write_local, Path(plan.path.directory), plan.rel, final_name, blob
                )
            else:
                out = await archive.write_remote(plan.storage, plan.rel, final_name, blob)
            written.append(out.where)
        return written


# ---------------------------------------------------------------- helpers (sync, worker threads)
def _tiff_to_pdf(tiff: Path) -> Path:
    from kalliope_tel.fax.documents import tiff_to_pdf

    if not tiff.exists():
        raise FileNotFoundError(f"the pages file {tiff.name} is missing")
    pdf = tiff.with_suffix(".pdf")
    tiff_to_pdf(tiff, pdf)
    pdf.chmod(0o600)
    return pdf


def _with_reason(reception: Reception, reason: str) -> Reception:
    from dataclasses import replace

    return replace(reception, ok=False, pages=0, reason=reason)


def _mail_for(session: Session, claim: deliveries.DeliveryClaim, sender: str, data_dir: Path) -> EmailMessage:
    from kalliope_tel.fax.notify import received_mail, report_mail

    if claim.kind is DeliveryKind.NOTICE:  # prepared text (Mail2Fax accepted / refused)
        from kalliope_tel.mail.compose import message

        p = claim.payload
        return message(sender, claim.target, p["subject"], p["body"], in_reply_to=p.get("in_reply_to", ""))
    pbx = session.get(Pbx, claim.pbx_id)
    assert pbx is not None
    serial = get_settings(session, pbx).serial_number
    if claim.direction is Direction.INBOUND:
        fax = session.get(FaxReceived, claim.fax_id)
        assert fax is not None
        return received_mail(
            fax,
            serial=serial,
            pbx_slug=pbx.slug,
            timezone=pbx.timezone,
            sender=sender,
            to=claim.target,
            pdf=data_dir / fax.document,
        )
    job = session.get(FaxJob, claim.fax_id)
    assert job is not None
    summary = [f"Fax {job.id} to {job.number}: {job.state.value}" + (f" ({job.reason})" if job.reason else "")]
    for attempt in jobs.attempts_of(session, job.id):
        summary.append(
            f"Attempt {attempt.number} at {attempt.started_at:%Y-%m-%d %H:%M:%S} UTC: "
            + ("sent" if attempt.ok else f"failed ({attempt.reason})")
            + (f", {attempt.pages} page(s) at {attempt.bit_rate} bit/s" if attempt.pages else "")
        )
    return report_mail(
        job,
        serial=serial,
        pbx_slug=pbx.slug,
        sender=sender,
        to=claim.target,
        report=data_dir / job.report,
        summary=summary,
    )


@dataclass(frozen=True)
class _ArchivePlan:
    path: ArchivePath
    storage: RemoteStorage | None
    rel: PurePosixPath
    files: list[tuple[str, str]]  # (file under the data dir, archived name)


def _archive_plan(session: Session, claim: deliveries.DeliveryClaim) -> _ArchivePlan:
    from kalliope_tel.fax.archive import relative_dir

    path = session.get(ArchivePath, int(claim.target))
    if path is None:
        raise RuntimeError("the archival path was removed")
    storage = session.get(RemoteStorage, path.storage_id) if path.storage_id else None
    pbx = session.get(Pbx, claim.pbx_id)
    assert pbx is not None
    if claim.direction is Direction.INBOUND:
        fax = session.get(FaxReceived, claim.fax_id)
        assert fax is not None
        instance_id, when = fax.instance_id, fax.started_at
        files = [(fax.document, fax.file_name)]
    else:
        job = session.get(FaxJob, claim.fax_id)
        assert job is not None
        instance_id, when = job.instance_id, job.created_at
        stem = f"O{job.number}_{when:%Y-%m-%d_%H_%M_%S}_{job.id}"
        files = [(claim.payload["document"], f"{stem}.pdf")]
        if claim.payload.get("report"):
            files.append((claim.payload["report"], f"{stem}_report.pdf"))
    instance = session.get(FaxInstance, instance_id)
    assert instance is not None
    rel = relative_dir(instance, pbx.slug, pbx.timezone, claim.direction, when)
    return _ArchivePlan(path, storage, rel, files)
