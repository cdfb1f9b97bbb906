"""Two serve nodes on PostgreSQL apply one Asterisk's changes: 200 changes
made from both sides (extensions added, renamed, suspended, resumed and
deleted in four PBXs, from two writers at once) each reach Asterisk through
one node only (the apply lease: no PBX's serial is written by both), every
PBX ends Applied at its last serial, and the files on disk equal a fresh
render of the store."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid

import pytest
from sqlalchemy import select

from kalliope_tel.asterisk.config_state import state_of
from kalliope_tel.asterisk.targets import LAB_DEVICE
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.dialplan.generator import render
from kalliope_tel.extensions import services as extensions
from kalliope_tel.extensions.models import Extension, ExtensionStatus
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.lab.ports import free_tcp_port
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import create_pbx
from tests.helpers import ServeNode, serve_env

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]
SLUGS = ["duea", "dueb", "duec", "dued"]
CHANGES = 200


def _node(state: LabState, url: str, name: str) -> ServeNode:
    return ServeNode(serve_env(state, url, KALLIOPE_NODE_NAME=name, KALLIOPE_LOG_LEVEL="info",
                               KALLIOPE_AGI_BIND=f"127.0.0.1:{free_tcp_port()}"))  # fmt: skip


def _change(container: Container, rng: random.Random, n: int, writer: int) -> None:
    """One change of one PBX: add, rename, suspend/resume or delete an extension.
    Each writer keeps to its own numbers (even or odd): two writers creating or
    deleting the same number would race each other, not test the appliers."""
    with transaction(container.sessions) as s:
        pbx = s.scalars(select(Pbx).where(Pbx.slug == rng.choice(SLUGS))).one()
        every = s.scalars(select(Extension.number).where(Extension.pbx_id == pbx.id)).all()
        numbers = [number for number in every if int(number) % 2 == writer]
        kind = rng.random()
        if not numbers or kind < 0.35:
            number = str(rng.randrange(100, 200) * 2 + writer)
            if number not in numbers:
                extensions.create_extension(s, pbx, number, name=f"n{n}")
            return
        number = rng.choice(numbers)
        if kind < 0.6:
            extensions.update_extension(s, pbx, number, name=f"renamed {n}")
        elif kind < 0.85:
            current = extensions.get_extension(s, pbx, number).status
            other = ExtensionStatus.ACTIVE if current is ExtensionStatus.SUSPENDED else ExtensionStatus.SUSPENDED
            extensions.set_status(s, pbx, number, other)
        else:
            extensions.delete_extension(s, pbx, number)


def _written(output: str) -> set[tuple[str, int]]:
    """(PBX id, serial) pairs this node wrote files for."""
    pairs = set()
    for line in output.splitlines():
        if '"asterisk.config_written"' not in line:
            continue
        event = json.loads(line[line.index("{") :])
        pairs |= {(pbx, serial) for pbx, serial in event["serials"].items()}
    return pairs


def test_two_nodes_apply_200_changes_each_once(
    db_backend: str, lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    if db_backend != "postgresql":
        pytest.skip("several nodes share PostgreSQL (SQLite is one node's store)")
    container = Container(Settings(database_url=fresh_db_url))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as s:
        for slug in SLUGS:
            pbx = create_pbx(s, slug, slug.upper())
            extensions.create_extension(s, pbx, "201")
    nodes = [_node(lab_state, fresh_db_url, f"apply-{x}-{uuid.uuid4().hex[:4]}") for x in "ab"]
    outputs = ["", ""]
    try:
        deadline = time.monotonic() + 30
        while not all('"serve.started"' in node.output() for node in nodes):
            assert time.monotonic() < deadline, "a node did not start"
            time.sleep(0.2)
        writers = [Container(Settings(database_url=fresh_db_url)) for _ in range(2)]

        def write(index: int) -> None:
            rng = random.Random(index)
            for n in range(index, CHANGES, 2):
                _change(writers[index], rng, n, index)
                time.sleep(0.06)  # about 8 s of changes: several rounds of both nodes

        threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

        def applied() -> bool:
            with transaction(container.sessions, read_only=True) as s:
                return all(
                    state_of(s, p)["state"] == "applied" for p in s.scalars(select(Pbx).where(Pbx.slug.in_(SLUGS)))
                )

        deadline = time.monotonic() + 60
        while not applied():
            assert time.monotonic() < deadline, "not every PBX applied"
            time.sleep(0.5)
        with transaction(container.sessions, read_only=True) as s:
            for pbx in s.scalars(select(Pbx).where(Pbx.slug.in_(SLUGS))):
                for name, text in render(s, pbx, LAB_DEVICE).files.items():
                    assert (lab.dir / "etc" / name).read_text() == text, name
        for writer in writers:
            writer.close()
    finally:
        outputs = [node.finish(30) for node in nodes]
        container.close()
    first, second = (_written(out) for out in outputs)
    assert first and second, f"both nodes applied some changes: {len(first)} and {len(second)}"
    assert first & second == set(), "a PBX's change written by both nodes"
