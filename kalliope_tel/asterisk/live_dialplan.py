"""An extension's dialplan changed in place, without ``dialplan reload``.

At 50,000 endpoints a dialplan reload takes about a minute (bench
provision): a new, suspended or deleted extension cannot wait for it. The
generated file is still written (it is what a reload or a restart reads);
what changed in the PBX's extensions context is also sent to the running
dialplan as ``DialplanExtensionAdd`` (Replace) and ``DialplanExtensionRemove``
actions. Only that context is changed this way: when anything else in the
file differs (a feature's context, an include), the plan is ``None`` and
the caller reloads. A new PBX's file is created context by context
(``plan_new``) and a deleted one's contexts removed (``plan_removed``), so
neither reloads either (a reload at 50,000 endpoints re-reads every hint).

Sans-IO: text in, actions out. It reads the generator's own output, whose
lines are ``exten => NUMBER,PRIORITY,App(data)`` and `` same => n,App(data)``.
"""

from __future__ import annotations

from dataclasses import dataclass

Step = tuple[str, str, str]  # priority ("hint", "1", "2", ...), application, data
# Priority labels (n(done)) cannot be given through AMI: a context with one
# is never sent, its file reloads.
LABELLED = "labelled"
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
            exten = last[0]
            priority, _, call = value.strip().partition(",")
        priority = priority.strip()
        if "(" in priority:  # a label: kept in the data compared, never sent
            priority, _, label = priority.partition("(")
            call = f"{call}\x00{LABELLED}:{label}"
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


def _labelled(context: Context) -> bool:
    return any(f"\x00{LABELLED}:" in data for steps in context.values() for _, _, data in steps)


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
    if _labelled(before) or _labelled(after):
        return None
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


def _command(cli: str) -> Action:
    return Action("Command", (("Command", cli),))


# The one extension that makes an empty context exist (a context of
# includes only): AMI creates contexts through an extension, which then goes.
SEED_EXTEN = "kt-context-seed"


def plan_new(new_text: str) -> list[Action] | None:
    """A PBX's file Asterisk has not read yet (a new PBX): every context
    created through AMI, or None when the file holds more than extensions
    and includes."""
    try:
        new = parse(new_text)
    except ValueError:
        return None
    if any(_labelled(extens) for extens in new.contexts.values()):
        return None
    actions: list[Action] = []
    for name, extens in new.contexts.items():
        includes = []
        for line in new.other.get(name, []):
            key, _, value = line.partition("=>")
            if key.strip() != "include" or not value.strip():
                return None
            includes.append(value.strip())
        if not extens:
            seed = (("Context", name), ("Extension", SEED_EXTEN))
            actions += [
                Action("DialplanExtensionAdd", (*seed, ("Priority", "1"), ("Application", "NoOp"))),
                Action("DialplanExtensionRemove", seed),
            ]
        for exten in sorted(extens):
            for priority, app, data in extens[exten]:
                fields = [("Context", name), ("Extension", exten), ("Priority", priority), ("Application", app)]
                if data:
                    fields.append(("ApplicationData", data))
                actions.append(Action("DialplanExtensionAdd", (*fields, ("Replace", "yes"))))
        actions += [_command(f"dialplan add include {included} into {name}") for included in includes]
    return actions if new.other.get("", []) == [] else None


def plan_removed(old_text: str) -> list[Action] | None:
    """A deleted PBX's file: its contexts removed (their hints with them)."""
    try:
        old = parse(old_text)
    except ValueError:
        return None
    return [_command(f"dialplan remove context {name}") for name in old.contexts]
