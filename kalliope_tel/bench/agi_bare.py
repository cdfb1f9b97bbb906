"""The bare-loop reference of ``bench agi``: the least a Python FastAGI
server can do per request, on plain asyncio streams: read the ``agi_*``
block, one ``SET VARIABLE`` with its reply, the final status without one,
close. The same protocol steps as the ``pbx-name`` handler through our
stack, minus everything else, measured in the same run as a ratio."""

from __future__ import annotations

import asyncio
import sys

from kalliope_tel.tuning import settle_heap


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while (await reader.readline()).strip():
            pass
        writer.write(b"SET VARIABLE KT_BARE 1\n")
        await reader.readline()
        writer.write(b"SET VARIABLE KALLIOPE_AGI_STATUS SUCCESS\n")
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, reuse_address=True)
    async with server:
        settle_heap()
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
