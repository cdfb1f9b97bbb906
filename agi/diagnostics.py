"""Diagnostic handlers: prove the FastAGI path end to end from the dialplan."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.tenancy.services import pbx_display_name

if TYPE_CHECKING:
    from kalliope_tel.asterisk.agi.server import AgiRequest, AgiRouter
    from kalliope_tel.container import Container


def register(router: AgiRouter, container: Container) -> None:
    async def echo(request: AgiRequest) -> None:
        """Reads a channel variable, answers in KT_ECHO_OUT, and plays a beep.

        ``KT_ECHO_OUT`` = ``x=<query x>;in=<KT_ECHO_IN>;args=<arg1|arg2>``.
        """
        incoming = await request.get_variable("KT_ECHO_IN") or ""
        summary = f"x={request.params.get('x', '')};in={incoming};args={'|'.join(request.args)}"
        await request.set_variable("KT_ECHO_OUT", summary)
        await request.play("beep")

    async def slow_echo(request: AgiRequest) -> None:
        """Plays a long prompt: lets tests stop 'serve' while a request runs."""
        await request.play("hello-world")
        await request.play("hello-world")

    async def pbx_name(request: AgiRequest) -> None:
        """One database read and one SET VARIABLE: the FastAGI benchmark's handler."""
        slug = request.params.get("pbx")
        name = await container.hot_reader.read(lambda conn: pbx_display_name(conn, slug))
        await request.set_variable("KT_PBX_NAME", name)

    router.add("echo", echo)
    router.add("slow-echo", slow_echo)
    router.add("pbx-name", pbx_name)
