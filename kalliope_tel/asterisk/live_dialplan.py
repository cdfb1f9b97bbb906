"""An extension's dialplan changed in place, without ``dialplan reload``.

At 50,000 endpoints a dialplan reload takes about a minute (bench
provision): a new, suspended or deleted extension cannot wait for it. The
generated file is still written (it is what a reload or a restart reads);
what changed in the PBX's extensions context is also sent to the running
dialplan as ``DialplanExtensionAdd`` (Replace) and ``DialplanExtensionRemove``
actions; a context that appears is created (its includes with ``dialplan
add include``), one that goes is removed (``dialplan remove context``). A
new PBX's file is planned from nothing, a deleted one's to nothing. Only a
change of a context's includes, or a labelled priority (AMI cannot give
labels), makes the plan ``None``: the caller reloads (at 50,000 endpoints a
reload costs Asterisk minutes).

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


def _command(cli: str) -> Action:
    return Action("Command", (("Command", cli),))


def _add(context: str, exten: str, step: Step) -> Action:
    priority, app, data = step
    fields = [("Context", context), ("Extension", exten), ("Priority", priority), ("Application", app)]
    if data:
        fields.append(("ApplicationData", data))
    return Action("DialplanExtensionAdd", (*fields, ("Replace", "yes")))


# The one extension that makes an empty context exist (a context of
# includes only): AMI creates contexts through an extension, which then goes.
SEED_EXTEN = "kt-context-seed"


def _includes(lines: list[str]) -> list[str] | None:
    """A context's include lines, or None when it holds anything else."""
    out = []
    for line in lines:
        key, _, value = line.partition("=>")
        if key.strip() != "include" or not value.strip():
            return None
        out.append(value.strip())
    return out


def _create(name: str, extens: Context, includes: list[str]) -> list[Action]:
    actions: list[Action] = []
    if not extens:
        seed = (("Context", name), ("Extension", SEED_EXTEN))
        actions += [
            Action("DialplanExtensionAdd", (*seed, ("Priority", "1"), ("Application", "NoOp"))),
            Action("DialplanExtensionRemove", seed),
        ]
    actions += [_add(name, exten, step) for exten in sorted(extens) for step in extens[exten]]
    return actions + [_command(f"dialplan add include {included} into {name}") for included in includes]


def _change(name: str, before: Context, after: Context) -> list[Action]:
    actions: list[Action] = []
    for exten in sorted(set(before) | set(after)):
        was, now = before.get(exten, []), after.get(exten, [])
        if was == now:
            continue
        kept = {priority for priority, _, _ in now}
        if was and any(priority not in kept for priority, _, _ in was):
            # A priority goes away: the extension is removed whole and added again.
            actions.append(Action("DialplanExtensionRemove", (("Context", name), ("Extension", exten))))
        actions += [_add(name, exten, step) for step in now]
    return actions


def plan(old_text: str, new_text: str) -> list[Action] | None:
    """The actions that take the running dialplan from ``old_text`` (""
    for a file Asterisk never read: a new PBX) to ``new_text`` ("" for a
    deleted PBX), or None when only a reload can: a context's includes
    changed, a labelled priority, a line that is neither."""
    try:
        old, new = parse(old_text), parse(new_text)
    except ValueError:
        return None
    if old.other.get("", []) or new.other.get("", []):
        return None
    actions: list[Action] = []
    for name, after in new.contexts.items():
        includes = _includes(new.other.get(name, []))
        if includes is None or _labelled(after):
            return None
        if name not in old.contexts:
            actions += _create(name, after, includes)
            continue
        before = old.contexts[name]
        if old.other.get(name, []) != new.other.get(name, []) or _labelled(before):
            return None
        actions += _change(name, before, after)
    actions += [_command(f"dialplan remove context {name}") for name in old.contexts if name not in new.contexts]
    return actions
