"""An extension's dialplan changed in place, without ``dialplan reload``.

At 50,000 endpoints a dialplan reload takes about a minute (bench
provision): a new, suspended or deleted extension cannot wait for it. The
generated file is still written (it is what a reload or a restart reads);
what changed in the PBX's extensions context is also sent to the running
dialplan as ``DialplanExtensionAdd`` (Replace) and ``DialplanExtensionRemove``
actions. Only that context is changed this way: when anything else in the
file differs (a new PBX, a feature's context, an include), the plan is
``None`` and the caller reloads.

Sans-IO: text in, actions out. It reads the generator's own output, whose
lines are ``exten => NUMBER,PRIORITY,App(data)`` and `` same => n,App(data)``.
"""

from __future__ import annotations

from dataclasses import dataclass

Step = tuple[str, str, str]  # priority ("hint", "1", "2", ...), application, data
Context = dict[str, list[Step]]  # extension -> its steps, in order


@dataclass(frozen=True)
class Action:
    name: str
    fields: tuple[tuple[str, str], ...]


@dataclass
class ParsedDialplan:
    contexts: dict[str, Context]
    other: dict[str, list[str]]  # per context, its lines that are not extensions (includes, switches)


def _split_app(text: str) -> tuple[str, str]:
    app, paren, rest = text.partition("(")
    if not paren:
        return app.strip(), ""
    return app.strip(), rest[: rest.rfind(")")] if ")" in rest else rest


def parse(text: str) -> ParsedDialplan:
    contexts: dict[str, Context] = {}
    other: dict[str, list[str]] = {}
    current = ""
    last: tuple[str, int] | None = None  # the extension a 'same' line continues, and its last priority
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            contexts.setdefault(current, {})
            other.setdefault(current, [])
            last = None
            continue
        key, arrow, value = line.partition("=>")
        key = key.strip()
        if not arrow or key not in ("exten", "same") or current == "":
            other.setdefault(current, []).append(line)
            continue
        if key == "exten":
            exten, _, rest = value.strip().partition(",")
            priority, _, call = rest.partition(",")
        else:
            if last is None:
                raise ValueError(f"'same' with no extension before it: {line!r}")
            exten, priority, call = last[0], "n", value.strip().partition(",")[2]
        priority = priority.strip()
        if priority == "n":
            if last is None or last[0] != exten:
                raise ValueError(f"priority n with no priority before it: {line!r}")
            number = last[1] + 1
        elif priority == "hint":
            contexts[current].setdefault(exten, []).append(("hint", call.strip(), ""))
            continue
        else:
            number = int(priority)
        app, data = _split_app(call)
        contexts[current].setdefault(exten, []).append((str(number), app, data))
        last = (exten, number)
    return ParsedDialplan(contexts, other)


def plan(old_text: str, new_text: str, live_context: str) -> list[Action] | None:
    """The actions that take the running dialplan from ``old_text`` to
    ``new_text``, or None when more than ``live_context``'s extensions changed."""
    try:
        old, new = parse(old_text), parse(new_text)
    except ValueError:
        return None
    if old.other != new.other or set(old.contexts) != set(new.contexts) or live_context not in new.contexts:
        return None
    if any(old.contexts[name] != new.contexts[name] for name in new.contexts if name != live_context):
        return None
    before, after = old.contexts[live_context], new.contexts[live_context]
    actions: list[Action] = []
    for exten in sorted(set(before) | set(after)):
        was, now = before.get(exten, []), after.get(exten, [])
        if was == now:
            continue
        kept = {priority for priority, _, _ in now}
        if was and any(priority not in kept for priority, _, _ in was):
            # A priority goes away: the extension is removed whole and added again.
            actions.append(Action("DialplanExtensionRemove", (("Context", live_context), ("Extension", exten))))
        for priority, app, data in now:
            fields = [("Context", live_context), ("Extension", exten), ("Priority", priority), ("Application", app)]
            if data:
                fields.append(("ApplicationData", data))
            actions.append(Action("DialplanExtensionAdd", (*fields, ("Replace", "yes"))))
    return actions
