"""Reading the boxes in serve.

``BoxWatcher`` reads one box on its own thread (IMAP and POP3 clients and
GnuPG and the document converters all block): connect, hand every message
to the intake, settle it on the server only after its request row is
committed, then IDLE (IMAP) or sleep (POP3). Any network failure (a dropped
connection, a restarted server, an IDLE that stopped answering) closes the
client and reconnects with backoff; nothing is removed from the server that
is not recorded, and nothing recorded is handled again.

``BoxSupervisor`` is serve's job: it holds box leases for this node (one
node reads a box at a time; another takes over within the lease when it
dies), starts a watcher per held box, and restarts one whose settings
changed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from kalliope_tel.backoff import Backoff, Retry
from kalliope_tel.db.engine import transaction
from kalliope_tel.mail2fax.intake import Intake, Item
from kalliope_tel.mail2fax.mailbox import BoxAccess, MailboxClient, client_for

log = structlog.get_logger(__name__)
RETRY_SECONDS = 2.0  # a message that failed (database down...) is tried again this soon
RECONNECT = Backoff(first=1.0, cap=60.0)  # a box whose server went away
POISON_TRIES = 3  # a message that fails this often with an internal error is refused, not retried forever


def network_errors() -> tuple[type[BaseException], ...]:
    """What a dropped, restarted or hung server raises: reconnect, with backoff.
    (imaplib's error, IMAPClient's "abort" on EOF included: it is not an
    IMAPClientError.)"""
    import imaplib
    import poplib
    import ssl

    from imapclient.exceptions import IMAPClientError

    from kalliope_tel.mail2fax.mailbox import ConnectionLost

    return (OSError, ssl.SSLError, poplib.error_proto, imaplib.IMAP4.error, IMAPClientError, ConnectionLost, EOFError)


@dataclass
class WatcherStats:
    handled: int = 0
    settled: int = 0
    reconnects: int = 0
    last_info: str = ""


class BoxWatcher:
    def __init__(
        self,
        box: BoxAccess,
        intake: Intake,
        health: Callable[[int, str | None], None],
        client_factory: Callable[[BoxAccess], MailboxClient] = client_for,
    ) -> None:
        self.box = box
        self.intake = intake
        self.health = health
        self.client = client_factory(box)
        self.stop_event = threading.Event()
        self.waiting = False
        self.stats = WatcherStats()
        self.failures: dict[tuple[int, str], int] = {}
        self.thread = threading.Thread(target=self._run, name=f"mail2fax-{box.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Stop after the message in hand is recorded and settled; a wait in
        progress (IDLE, or a dead server's timeout) is cut short."""
        self.stop_event.set()
        if self.waiting:
            self.client.interrupt()

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run(self) -> None:
        errors = network_errors()
        retry = Retry(RECONNECT)
        while not self.stop_event.is_set():
            try:
                if not self.client.connected:
                    self.stats.last_info = self.client.connect()
                    self.health(self.box.id, None)
                    log.info("mail2fax.connected", box=self.box.name, found=self.stats.last_info)
                if self.cycle():  # some message failed: retry soon, not at the next IDLE news
                    self.stop_event.wait(RETRY_SECONDS)
                    continue
                retry.reset()
                self.waiting = True
                try:
                    self.client.wait(self.stop_event)
                finally:
                    self.waiting = False
            except errors as exc:
                self.client.close()
                if self.stop_event.is_set():
                    break
                self.stats.reconnects += 1
                why = f"{type(exc).__name__}: {exc}"
                delay = retry.next()
                log.warning("mail2fax.connection_lost", box=self.box.name, error=why, retry_in=delay)
                self.health(self.box.id, why)
                self.stop_event.wait(delay)
            except Exception as exc:  # the database or a bug: keep the box, retry later
                self.client.close()
                log.exception("mail2fax.cycle_failed", box=self.box.name, error=str(exc))
                self.health(self.box.id, f"{type(exc).__name__}: {exc}")
                self.stop_event.wait(retry.next())
        self.client.close()

    def cycle(self) -> int:
        """Every message in the folder: handled once, then settled. Returns
        how many failed (they stay on the server for the next cycle)."""
        failed = 0
        for item in self.client.pending():
            if self.stop_event.is_set():
                break
            row = self.intake.recorded(self.box.id, item)
            if row is None:
                request_id = self._handle(item)
                if request_id is None:
                    failed += 1
                    continue
            else:
                request_id = row.id  # handled before (by us before a crash, or another node)
            self.client.settle(item)
            self.intake.settled(request_id)
            self.stats.settled += 1
        return failed

    def _handle(self, item: Item) -> int | None:
        log.info("mail2fax.fetched", box=self.box.name, uid=item.uid, size=item.size)
        key = (item.uidvalidity, item.uid)
        try:
            if item.size > self.box.max_bytes:
                handled = self.intake.handle(self.box.id, item, None, self.client.headers(item))
            else:
                handled = self.intake.handle(self.box.id, item, self.client.fetch(item))
        except network_errors():
            raise
        except Exception as exc:
            tries = self.failures[key] = self.failures.get(key, 0) + 1
            log.exception("mail2fax.handling_failed", box=self.box.name, uid=item.uid, tries=tries, error=str(exc))
            if tries < POISON_TRIES:
                return None
            headers = self.client.headers(item)
            handled = self.intake.give_up(self.box.id, item, headers, f"the request could not be processed ({exc})")
        self.failures.pop(key, None)
        self.stats.handled += 1
        if handled.request_id is None:  # another node wrote it first: settle what it recorded
            row = self.intake.recorded(self.box.id, item)
            return row.id if row is not None else None
        return handled.request_id


def box_access(box: object) -> BoxAccess:
    from kalliope_tel.mail2fax.models import Mail2FaxBox

    assert isinstance(box, Mail2FaxBox)
    return BoxAccess(
        id=box.id,
        name=box.name,
        protocol=box.protocol.value,
        ssl=box.ssl,
        server=box.server,
        port=box.port,
        timeout=box.timeout,
        username=box.username,
        password=box.password,
        ca_file=box.ca_file,
        folder=box.folder,
        processed_folder=box.processed_folder,
        poll_seconds=box.poll_seconds,
        max_bytes=box.max_bytes,
    )


class BoxSupervisor:
    """serve's Mail2Fax job: leases, watchers, restarts on changed settings."""

    def __init__(self, intake: Intake, tick: float = 10.0) -> None:
        self.intake = intake
        self.tick = tick
        self.watchers: dict[int, BoxWatcher] = {}

    def _health(self, box_id: int, error: str | None) -> None:
        from kalliope_tel.mail2fax.boxes import record_health

        try:
            with transaction(self.intake.sessions) as session:
                record_health(session, box_id, error)
        except Exception as exc:  # health is advisory; the database may be the thing that is down
            log.warning("mail2fax.health_not_recorded", box=box_id, error=str(exc))

    def _held(self) -> list[BoxAccess]:
        from kalliope_tel.mail2fax.boxes import hold_boxes
        from kalliope_tel.mail2fax.models import Mail2FaxBox

        with transaction(self.intake.sessions) as session:
            ids = hold_boxes(session, self.intake.node)
            return [box_access(session.get(Mail2FaxBox, i)) for i in ids]

    async def run(self) -> None:
        try:
            while True:
                try:
                    held = await asyncio.to_thread(self._held)
                except Exception as exc:
                    log.warning("mail2fax.lease_failed", error=str(exc))
                    held = None  # keep what runs; the lease outlives a short outage
                if held is not None:
                    self._apply({b.id: b for b in held})
                await asyncio.sleep(self.tick)
        finally:
            await self.stop()

    def _apply(self, wanted: dict[int, BoxAccess]) -> None:
        for box_id, watcher in list(self.watchers.items()):
            if wanted.get(box_id) != watcher.box:  # removed, disabled, taken over or changed
                watcher.stop()
                del self.watchers[box_id]
                log.info("mail2fax.box_stopped", box=watcher.box.name)
        for box_id, access in wanted.items():
            if box_id not in self.watchers:
                watcher = BoxWatcher(access, self.intake, self._health)
                self.watchers[box_id] = watcher
                watcher.start()
                log.info("mail2fax.box_started", box=access.name, protocol=access.protocol)

    async def stop(self) -> None:
        from kalliope_tel.mail2fax.boxes import release_boxes

        for watcher in self.watchers.values():
            watcher.stop()
        # Each finishes the message in hand (recorded and settled) or gives up after 10 s.
        await asyncio.gather(*(asyncio.to_thread(w.join, 10.0) for w in self.watchers.values()))
        self.watchers.clear()
        try:
            await asyncio.to_thread(self._release, release_boxes)
        except Exception as exc:
            log.warning("mail2fax.release_failed", error=str(exc))

    def _release(self, release: Callable[..., None]) -> None:
        with transaction(self.intake.sessions) as session:
            release(session, self.intake.node)
