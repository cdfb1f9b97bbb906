"""spandsp's log lines routed to our structured logger.

spandsp's message handler gets only (level, text), no user data, so one
module-level callback serves every session; each session's logging states
carry its tag (the call it belongs to), which spandsp prints first on the line.
"""

from __future__ import annotations

from typing import Any

import structlog

from kalliope_tel.fax.spandsp import SPAN_LOG_PROTOCOL_WARNING, SPAN_LOG_SHOW_TAG, SPAN_LOG_WARNING, c_text, ffi, lib

log = structlog.get_logger("kalliope_tel.fax.spandsp")
_handler: Any = None


def _on_message(level: int, text: Any) -> None:
    line = c_text(text).rstrip()
    if not line:
        return
    if level <= SPAN_LOG_WARNING:
        log.warning("spandsp", line=line)
    elif level <= SPAN_LOG_PROTOCOL_WARNING:
        log.info("spandsp", line=line)
    else:
        log.debug("spandsp", line=line)


def route(state: Any, tag: str, level: int) -> None:
    """Send one spandsp logging state's lines of ``level`` or worse to our logger."""
    global _handler
    if _handler is None:
        _handler = ffi.callback("message_handler_func_t", _on_message)
    if tag:
        lib().span_log_set_tag(state, tag.encode()[:40])
    lib().span_log_set_message_handler(state, _handler)
    lib().span_log_set_level(state, level | (SPAN_LOG_SHOW_TAG if tag else 0))
