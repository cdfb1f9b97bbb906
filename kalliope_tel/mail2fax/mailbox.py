"""The two ways to read a box, behind one small interface the watcher uses:
IMAP (IMAPClient, blocking, on the box's own thread; IDLE so a new message
is seen within Dovecot's ~0.5 s notification delay) and POP3 (the standard
poplib, polled).

Why IMAPClient in a thread and not aioimaplib: see docs/dependencies.md
(aioimaplib is GPL-3.0-only and, measured on Dovecot 2.3, never reports a
server that went away during IDLE; IMAPClient's idle_check returns at once
on BYE or EOF, which ``wait`` turns into ``ConnectionLost``).

Passwords go straight from the box row to the LOGIN/PASS command; they are
never logged. TLS always: implicit (IMAPS/POP3S) when the box says SSL,
STARTTLS otherwise; a server offering neither is refused rather than sent
the password in clear.
"""

from __future__ import annotations

import contextlib
import poplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from kalliope_tel.errors import KalliopeError
from kalliope_tel.mail2fax.intake import Item

RECHECK_AFTER = 0.25  # seconds of IDLE before the one look for a message Dovecot did not announce


class ConnectionLost(KalliopeError):
    pass


@dataclass(frozen=True)
class BoxAccess:
    """What a client needs of a box (a snapshot: the thread never touches the database row)."""

    id: int
    name: str
    protocol: str
    ssl: bool
    server: str
    port: int
    timeout: int
    username: str
    password: str
    ca_file: str
    folder: str
    processed_folder: str
    poll_seconds: int
    max_bytes: int

    def __repr__(self) -> str:  # never the password, whatever prints it
        return f"BoxAccess({self.name!r}, {self.protocol}://{self.server}:{self.port})"


class MailboxClient(Protocol):
    @property
    def connected(self) -> bool: ...
    def connect(self) -> str: ...  # a line on what was found
    def pending(self) -> list[Item]: ...
    def fetch(self, item: Item) -> bytes: ...
    def headers(self, item: Item) -> bytes: ...
    def settle(self, item: Item) -> None: ...
    def wait(self, stop: threading.Event) -> None: ...
    def interrupt(self) -> None: ...
    def close(self) -> None: ...


def tls_context(box: BoxAccess) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=box.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def client_for(box: BoxAccess) -> MailboxClient:
    return ImapBox(box) if box.protocol == "imap" else Pop3Box(box)


class ImapBox:
    def __init__(self, box: BoxAccess, readonly: bool = False) -> None:
        self.box = box
        self.readonly = readonly  # EXAMINE: look without changing a flag (boxes test)
        self.client: Any = None  # imapclient.IMAPClient (untyped)
        self.uidvalidity = 0
        self.seen: set[int] = set()  # UIDs the last cycle saw

    @property
    def connected(self) -> bool:
        return self.client is not None

    def _c(self) -> Any:
        if self.client is None:
            raise ConnectionLost("not connected")
        return self.client

    def connect(self) -> str:
        from imapclient import IMAPClient

        box = self.box
        context = tls_context(box)
        client = IMAPClient(box.server, port=box.port, ssl=box.ssl, ssl_context=context, timeout=box.timeout)
        self.client = client
        if not box.ssl:
            if b"STARTTLS" not in client.capabilities():
                raise ConnectionLost("the server offers neither SSL nor STARTTLS; the password is not sent in clear")
            client.starttls(context)
        _keepalive(client.socket())
        client.login(box.username, box.password)
        if b"IDLE" not in client.capabilities():
            raise ConnectionLost("the IMAP server does not support IDLE")
        selected = client.select_folder(box.folder, readonly=self.readonly)
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        if box.processed_folder and not self.readonly and not client.folder_exists(box.processed_folder):
            client.create_folder(box.processed_folder)
        return f"IMAP {box.folder}: {int(selected.get(b'EXISTS', 0))} message(s), UIDVALIDITY {self.uidvalidity}"

    def pending(self) -> list[Item]:
        client = self._c()
        self._news()  # from here on, any EXISTS is news to the next wait()
        uids = client.search(["ALL"])
        self.seen = set(uids)
        if not uids:
            return []
        sizes = client.fetch(uids, ["RFC822.SIZE"])
        return [
            Item(self.uidvalidity, str(uid), int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))) for uid in sorted(uids)
        ]

    def fetch(self, item: Item) -> bytes:
        data = self._c().fetch([int(item.uid)], ["BODY.PEEK[]"])
        body = data.get(int(item.uid), {}).get(b"BODY[]")
        if body is None:
            raise ConnectionLost(f"message {item.uid} vanished from the server")
        return bytes(body)

    def headers(self, item: Item) -> bytes:
        data = self._c().fetch([int(item.uid)], ["BODY.PEEK[HEADER]"])
        return bytes(data.get(int(item.uid), {}).get(b"BODY[HEADER]", b""))

    def settle(self, item: Item) -> None:
        """Move to the processed folder, or delete (the request is in the database)."""
        client = self._c()
        uid = int(item.uid)
        if self.box.processed_folder:
            if b"MOVE" in client.capabilities():
                client.move([uid], self.box.processed_folder)
                return
            client.copy([uid], self.box.processed_folder)
        client.add_flags([uid], [b"\\Deleted"])
        if b"UIDPLUS" in client.capabilities():
            client.uid_expunge([uid])
        else:
            client.expunge()

    def wait(self, stop: threading.Event) -> None:
        """IDLE until something changes or ``poll_seconds`` pass.

        Two races are closed here. A message whose EXISTS came with an
        earlier command's response (SEARCH, FETCH, MOVE: IMAPClient files
        those away) is not announced again during IDLE. And Dovecot misses a
        message saved in the few milliseconds while IDLE starts (measured:
        announced only at its next periodic check, 30-60 s later). So: a
        first short IDLE, then one look (UID SEARCH) for anything not seen
        in the last cycle, then the long IDLE.
        """
        if self._news():
            return
        if self._idle(min(RECHECK_AFTER, self.box.poll_seconds), stop) or stop.is_set():
            return
        if set(self._c().search(["ALL"])) - self.seen:
            return
        self._idle(max(self.box.poll_seconds - RECHECK_AFTER, 0.0), stop)

    def _idle(self, seconds: float, stop: threading.Event) -> bool:
        """IDLE for up to ``seconds``: True when the server announced news.
        Leaving IDLE waits for the server's answer, so a server that stopped
        answering raises there (socket timeout) instead of hanging."""
        client = self._c()
        client.idle()
        deadline = time.monotonic() + seconds
        news = False
        lost = False
        try:
            while not stop.is_set() and not news:
                news = self._news()  # an EXISTS racing with the IDLE command itself is filed away too
                left = deadline - time.monotonic()
                if news or left <= 0:
                    break
                started = time.monotonic()
                responses = client.idle_check(timeout=min(left, 5.0))
                if any(r[:1] == (b"BYE",) or (len(r) > 1 and r[1] == b"BYE") for r in responses):
                    lost = True
                    raise ConnectionLost("the server closed the connection (BYE)")
                if not responses and time.monotonic() - started < min(left, 5.0) - 0.5:
                    lost = True
                    raise ConnectionLost("the server closed the connection")  # EOF: idle_check returns early
                news = any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)
        finally:
            if self.client is not None and not stop.is_set() and not lost:
                _, responses = client.idle_done()
                news = news or any(len(r) > 1 and r[1] == b"EXISTS" for r in responses)
        return news

    def _news(self) -> bool:
        untagged = self._c()._imap.untagged_responses
        return bool(untagged.pop("EXISTS", None)) | bool(untagged.pop("RECENT", None))

    def interrupt(self) -> None:
        sock = None
        try:
            if self.client is not None:
                sock = self.client.socket()
        except Exception:
            return
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # a dead connection cannot say goodbye: just drop the socket
            with contextlib.suppress(Exception):
                client.shutdown()


class Pop3Box:
    """POP3 has no push: each cycle logs in, lists, handles, deletes what
    was handled (committed at QUIT) and logs out; ``wait`` sleeps."""

    def __init__(self, box: BoxAccess) -> None:
        self.box = box
        self.pop: poplib.POP3 | None = None
        self.numbers: dict[str, int] = {}

    @property
    def connected(self) -> bool:
        return self.pop is not None

    def _p(self) -> poplib.POP3:
        if self.pop is None:
            raise ConnectionLost("not connected")
        return self.pop

    def connect(self) -> str:
        box = self.box
        context = tls_context(box)
        if box.ssl:
            pop: poplib.POP3 = poplib.POP3_SSL(box.server, box.port, timeout=box.timeout, context=context)
        else:
            pop = poplib.POP3(box.server, box.port, timeout=box.timeout)
            try:
                pop.stls(context)
            except poplib.error_proto:
                pop.close()
                raise ConnectionLost(
                    "the server offers neither SSL nor STLS; the password is not sent in clear"
                ) from None
        self.pop = pop
        pop.user(box.username)
        pop.pass_(box.password)
        count, size = pop.stat()
        return f"POP3: {count} message(s), {size:,} bytes"

    def pending(self) -> list[Item]:
        pop = self._p()
        self.numbers.clear()
        sizes: dict[int, int] = {}
        for line in pop.list()[1]:
            number_bytes, size_bytes = line.split()[:2]
            sizes[int(number_bytes)] = int(size_bytes)
        items = []
        for line in pop.uidl()[1]:
            number_text, uidl = line.decode("ascii", "replace").split()[:2]
            number = int(number_text)
            self.numbers[uidl] = number
            items.append(Item(0, uidl, sizes.get(number, 0)))
        return items

    def fetch(self, item: Item) -> bytes:
        return b"\r\n".join(self._p().retr(self.numbers[item.uid])[1]) + b"\r\n"

    def headers(self, item: Item) -> bytes:
        return b"\r\n".join(self._p().top(self.numbers[item.uid], 0)[1]) + b"\r\n"

    def settle(self, item: Item) -> None:
        self._p().dele(self.numbers[item.uid])  # deleted for good at QUIT (close)

    def wait(self, stop: threading.Event) -> None:
        self.close()  # QUIT commits the deletions and frees the mailbox lock
        stop.wait(self.box.poll_seconds)

    def interrupt(self) -> None:
        pop = self.pop
        if pop is not None and pop.sock is not None:
            with contextlib.suppress(OSError):
                pop.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        pop, self.pop = self.pop, None
        if pop is None:
            return
        try:
            pop.quit()
        except Exception:
            pop.close()


def _keepalive(sock: socket.socket) -> None:
    """A peer that vanishes without a FIN is noticed by the kernel too."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def probe(box: BoxAccess) -> dict[str, object]:
    """Log in and say what is there, touching no message (``boxes test``)."""
    client: MailboxClient = ImapBox(box, readonly=True) if box.protocol == "imap" else Pop3Box(box)
    started = time.monotonic()
    try:
        found = client.connect()
        items = client.pending()
        return {
            "ok": True,
            "found": found,
            "messages": len(items),
            "oversized": sum(1 for i in items if i.size > box.max_bytes),
            "seconds": round(time.monotonic() - started, 3),
        }
    finally:
        if isinstance(client, Pop3Box) and client.pop is not None:
            client.pop.rset()  # nothing marked for deletion, whatever happened
        client.close()
