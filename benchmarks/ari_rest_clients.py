"""CPU per ARI REST request through httpx, aiohttp and a minimal h11 pool.

Against a running lab Asterisk: ``python benchmarks/ari_rest_clients.py
STATE_JSON`` where STATE_JSON is the lab's state file (``kalliope-tel lab up``
prints its directory). 3,000 ``GET /asterisk/ping`` with 50 in flight, over 8
and 50 connections; the figures are in docs/dependencies.md.
"""

import asyncio
import base64
import json
import sys
import time

import aiohttp
import h11
import httpx

with open(sys.argv[1]) as state_file:
    st = json.load(state_file)
BASE = f"http://127.0.0.1:{st['http_port']}/ari"
AUTH = "Basic " + base64.b64encode(f"{st['ari_username']}:{st['ari_password']}".encode()).decode()
N, C = 3000, 50


async def drive(do):
    q = list(range(N))

    async def worker():
        while q:
            q.pop()
            await do()

    t0 = time.process_time()
    w0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(C)))
    return (time.process_time() - t0) / N * 1e6, N / (time.perf_counter() - w0)


async def run_httpx(conns):
    async with httpx.AsyncClient(
        base_url=BASE,
        headers={"Authorization": AUTH},
        limits=httpx.Limits(max_connections=conns, max_keepalive_connections=conns),
    ) as c:

        async def do():
            r = await c.request("GET", "/asterisk/ping")
            r.json()

        await do()
        return await drive(do)


async def run_aiohttp(conns):
    async with aiohttp.ClientSession(headers={"Authorization": AUTH}, connector=aiohttp.TCPConnector(limit=conns)) as s:

        async def do():
            async with s.request("GET", BASE + "/asterisk/ping") as r:
                await r.json()

        await do()
        return await drive(do)


class H11Pool:
    def __init__(self, host, port, size):
        self.host, self.port = host, port
        self.idle = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)

    async def request(self, method, target):
        conn = await self.idle.get()
        try:
            if conn is None:
                r, w = await asyncio.open_connection(self.host, self.port)
                conn = (r, w)
            r, w = conn
            h = h11.Connection(h11.CLIENT)
            w.write(
                h.send(h11.Request(method=method, target=target, headers=[("Host", "x"), ("Authorization", AUTH)]))
                + h.send(h11.EndOfMessage())
            )
            body = b""
            status = 0
            while True:
                ev = h.next_event()
                if ev is h11.NEED_DATA:
                    h.receive_data(await r.read(65536))
                    continue
                if isinstance(ev, h11.Response):
                    status = ev.status_code
                elif isinstance(ev, h11.Data):
                    body += ev.data
                elif isinstance(ev, h11.EndOfMessage):
                    break
            return status, body
        except BaseException:
            conn = None
            raise
        finally:
            self.idle.put_nowait(conn)


async def run_h11(conns):
    port = int(BASE.split(":")[2].split("/")[0])
    p = H11Pool("127.0.0.1", port, conns)

    async def do():
        _status, b = await p.request("GET", "/ari/asterisk/ping")
        json.loads(b)

    await do()
    return await drive(do)


async def main():
    for name, fn in [("httpx", run_httpx), ("aiohttp", run_aiohttp), ("h11", run_h11)] * 2:
        for conns in (8, 50):
            us, rps = await fn(conns)
            print(f"{name:8} conns={conns:3} cpu/request={us:7.0f} us  {rps:6.0f} req/s")


asyncio.run(main())
