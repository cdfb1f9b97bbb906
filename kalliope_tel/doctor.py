"""``kalliope-tel doctor``: is every part reachable, and if not, what to do."""

from __future__ import annotations

import asyncio
import socket

from sqlalchemy.exc import SQLAlchemyError

from kalliope_tel.asterisk.ami.protocol import AmiAuthError, AmiError
from kalliope_tel.asterisk.ari.errors import AriAuthError, AriError
from kalliope_tel.checks import Check
from kalliope_tel.config import mask_url_password
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.errors import KalliopeError


def check_database(container: Container) -> Check:
    url = mask_url_password(container.settings.effective_database_url)
    try:
        current = migrate.current_revision(container.engine)
        head = migrate.head_revision(container.engine)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        reason = str(orig) if orig is not None else str(exc)
        return Check(
            "database",
            False,
            f"{url}: {reason.splitlines()[0]}",
            "check database_url (KALLIOPE_DATABASE_URL) and that the server runs",
        )
    if current != head:
        return Check(
            "database",
            False,
            f"{url}: at revision {current or 'none'}, code expects {head}",
            "run 'kalliope-tel db upgrade'",
        )
    return Check("database", True, f"{url} (revision {current})")


async def check_ari(container: Container) -> Check:
    ep = container.endpoints
    client = container.ari_client()
    try:
        info = await client.info()
    except AriAuthError:
        return Check(
            "ARI",
            False,
            f"{ep.ari_url}: login refused",
            "check ari_username / ari_password against ari.conf",
        )
    except AriError as exc:
        return Check(
            "ARI",
            False,
            f"{ep.ari_url}: {exc}",
            "is Asterisk running with res_ari and http.conf on? (the lab: 'kalliope-tel lab up')",
        )
    finally:
        await client.aclose()
    return Check("ARI", True, f"{ep.ari_url} (Asterisk {info.system.get('version', '?')})")


async def check_ami(container: Container) -> Check:
    ep = container.endpoints
    client = container.ami_client()
    where = f"{ep.ami_host}:{ep.ami_port}"
    try:
        await client.connect()
        await client.action("Ping", timeout=5)
    except AmiAuthError:
        return Check(
            "AMI",
            False,
            f"{where}: login refused",
            "check ami_username / ami_password against manager.conf",
        )
    except AmiError as exc:
        return Check("AMI", False, f"{where}: {exc}", "is Asterisk running with manager.conf enabled?")
    finally:
        await client.aclose()
    return Check("AMI", True, f"{where} ({client.banner})")


def check_agi_port(container: Container) -> Check:
    ep = container.endpoints
    where = f"{ep.agi_host}:{ep.agi_port}"
    with socket.socket() as s:
        s.settimeout(1.0)
        if s.connect_ex((ep.agi_host, ep.agi_port)) == 0:
            return Check("FastAGI", True, f"{where}: kalliope-tel serve is listening")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ep.agi_host, ep.agi_port))
        except OSError as exc:
            return Check(
                "FastAGI",
                False,
                f"{where}: cannot bind: {exc.strerror}",
                "choose another agi_bind (KALLIOPE_AGI_BIND) and the same in extensions.conf",
            )
    return Check("FastAGI", True, f"{where}: free for 'kalliope-tel serve' (not running now)")


def check_realtime(container: Container) -> Check:
    """pjsip_accounts = realtime: serve answers, with the credentials Asterisk gives."""
    import httpx

    from kalliope_tel.asterisk.endpoints import realtime_listener
    from kalliope_tel.asterisk.realtime_web import basic_credentials

    try:
        bind, username, password = realtime_listener(container.settings)
    except KalliopeError as exc:
        return Check("realtime accounts", False, str(exc))
    url = f"http://{bind}/realtime/ps_endpoints/single"
    try:
        reply = httpx.post(url, content="id=", headers={"authorization": basic_credentials(username, password)})
    except httpx.HTTPError as exc:
        return Check("realtime accounts", False, f"{bind}: {exc}", "is serve running? Asterisk asks it for accounts")
    if reply.status_code != 200:
        return Check("realtime accounts", False, f"{bind}: HTTP {reply.status_code}", "realtime_password differs?")
    return Check("realtime accounts", True, f"{bind}: serve answers Asterisk's lookups")


def outbound_check(settings_outbound: bool, app: str, shown: str) -> Check:
    """Compare this node's ARI mode with what Asterisk says
    ('ari show outbound-websockets': name, type, apps, status, URI)."""
    rows = [line.split() for line in shown.splitlines()]
    serving = [r for r in rows if len(r) >= 5 and app in r[2].split(",")]
    if not settings_outbound:
        if serving:
            return Check(
                "ARI mode",
                False,
                f"Asterisk opens outbound websockets for {app} ({serving[0][0]}) but this node is in inbound mode",
                "set ari_outbound_bind (and its password) on every node, or 'kalliope-tel asterisk apply' without it",
            )
        return Check("ARI mode", True, f"inbound: serve subscribes to {app}")
    if not serving:
        return Check(
            "ARI mode",
            False,
            f"outbound mode, but Asterisk has no outbound websocket for {app}",
            "run 'kalliope-tel asterisk apply' (it writes kalliope/ari_outbound.conf and reloads res_ari)",
        )
    name, kind, _apps, status, uri = serving[0][:5]
    if status != "valid":
        return Check(
            "ARI mode",
            False,
            f"Asterisk's {name} is {status}",
            "its local_ari_user needs password_format = plain in ari.conf; see Asterisk's log",
        )
    return Check("ARI mode", True, f"outbound ({kind}): Asterisk connects to {uri}")


async def check_ari_mode(container: Container) -> Check:
    settings = container.settings
    client = container.ami_client()
    try:
        await client.connect()
        shown = await client.command("ari show outbound-websockets")
    except AmiError as exc:
        return Check("ARI mode", False, f"cannot ask Asterisk: {exc}")
    finally:
        await client.aclose()
    return outbound_check(bool(settings.ari_outbound_bind), settings.ari_app, shown)


async def _asterisk_checks(container: Container) -> list[Check]:
    return list(await asyncio.gather(check_ari(container), check_ami(container), check_ari_mode(container)))


def check_nodes(container: Container) -> list[Check]:
    """Every serve node that wrote a heartbeat: alive, its tasks, its loop lag."""
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.nodes import read_nodes

    with transaction(container.sessions) as session:
        nodes = read_nodes(session)
    checks = []
    for n in nodes:
        if n["stopped_cleanly"]:
            continue
        name = f"node {n['node']}"
        if not n["alive"]:
            checks.append(
                Check(
                    name,
                    False,
                    f"no heartbeat for {n['heartbeat_age_s']} s (pid {n['pid']})",
                    "is serve running there? a node that died is recovered by the others",
                )
            )
            continue
        tasks = n.get("tasks", {})
        down = sorted(t for t, v in tasks.items() if v["state"] != "running")
        restarts = sum(v["restarts"] for v in tasks.values())
        lag = n.get("loop_lag", {})
        detail = (
            f"{len(tasks)} tasks, {restarts} restart(s), loop lag p99 {lag.get('p99_ms', 0)} ms "
            f"max {lag.get('max_ms', 0)} ms (last minute)"
        )
        if down:
            errors = "; ".join(f"{t}: {tasks[t]['last_error']}" for t in down)
            checks.append(Check(name, False, f"task(s) not running: {errors}", "see the node's log"))
        else:
            checks.append(Check(name, True, detail))
    return checks


def run_checks(container: Container) -> list[Check]:
    checks = [check_database(container)]
    if checks[0].ok:  # features and nodes read tables the migrations create
        for feature in container.features:
            if feature.doctor is not None:
                checks.extend(feature.doctor(container))
        checks.extend(check_nodes(container))
    try:
        source = container.endpoints.source
    except KalliopeError as exc:
        return [*checks, Check("Asterisk", False, str(exc))]
    checks.append(Check("Asterisk", True, f"using {source}"))
    checks.extend(asyncio.run(_asterisk_checks(container)))
    checks.append(check_agi_port(container))
    if container.settings.pjsip_accounts == "realtime":
        checks.append(check_realtime(container))
    return checks
