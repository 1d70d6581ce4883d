"""``agentproc sessions``: the conversations in the log store, read and managed.

Reads (``list``, ``show``, and what ``prune`` would delete) open the store
read-only: they create no file or folder, and an older release's
``sessions.db`` is read as it is, never upgraded. Writes (``reset``,
``cancel``, ``delete``, ``prune``) open it normally, which creates it when
missing and upgrades an older file in place; they look the conversation up
read-only first, so a mistyped reference writes nothing.

A conversation is named by its opaque id, a prefix of the id (at least
:data:`~bridge.store.rules.MIN_ID_PREFIX` characters), or its label
``channel:key@profile``, compared whole (keys and profile names may hold
``:``, ``@`` and spaces; see :func:`bridge.store.reading.matching`).

Exit status: 0; 1 when no conversation matches, the store cannot be read or
written, or a confirmation was declined; 2 for a usage error: a bad option, a
reference naming several conversations, or a deletion without a terminal to
confirm it and without ``--yes``. Errors are raised as
:class:`~bridge.errors.BridgeError` and printed by :mod:`bridge.cli.main`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bridge.errors import BridgeError

from . import sessions_view as view
from .stores import data_dir_option
from .stores import read as _read
from .stores import write as _write

if TYPE_CHECKING:
    from bridge.store.records import Conversation, TranscriptTurn
    from bridge.store.sqlite import SQLiteStore

T = TypeVar("T")


@click.group()
def sessions() -> None:
    """Inspect and manage the conversations in the store.

    CONVERSATION is a conversation's id (as `agentproc sessions list` prints
    it), a unique start of the id (6 characters or more), or its label
    CHANNEL:KEY@PROFILE (for `agentproc chat`, terminal:<session-name>@<profile>).
    When a label names several conversations (the same profile name in two
    folders), use the id.

    list and show only read: they never create or change the store.
    """


# --- naming a conversation -------------------------------------------------------------------


class AmbiguousReference(BridgeError):
    """A reference (a label, or a short id prefix) that names several
    conversations; the message lists them so the user can pick an id."""

    exit_code = 2

    def __init__(self, ref: str, candidates: list[Conversation], command: str) -> None:
        rows = view.table(
            [(c.id, c.label, view.cwd(c), view.when(c.updated_at)) for c in candidates]
        )
        super().__init__(
            f"{ref!r} names {len(candidates)} conversations:\n"
            + "\n".join(f"  {row}" for row in rows),
            hint=f"name one by its id: {command} {candidates[0].id}",
        )
        self.ref = ref
        self.candidates = candidates


def _not_found(ref: str, store: SQLiteStore) -> BridgeError:
    from bridge.store.errors import NotFound
    from bridge.store.reading import MIN_ID_PREFIX

    hint = "`agentproc sessions list` shows the ids and labels"
    if 0 < len(ref) < MIN_ID_PREFIX and ":" not in ref:
        hint += f"; a start of an id needs at least {MIN_ID_PREFIX} characters"
    return NotFound(
        f"no conversation with the id, id start or label {ref!r} in {store.path}", hint=hint
    )


async def _resolve(store: SQLiteStore, ref: str) -> Conversation:
    found = await store.find(ref)
    if len(found) == 1:
        return found[0]
    if not found:
        raise _not_found(ref, store)
    command = click.get_current_context().command_path
    raise AmbiguousReference(ref, sorted(found, key=lambda c: c.id), command)


def _by() -> str:
    """Who asks, for the events a write records."""
    return os.environ.get("USER", "")


# --- list ------------------------------------------------------------------------------------


@sessions.command("list")
@click.option("--channel", help="Only this channel's conversations.")
@click.option("--profile", help="Only conversations with profiles of this name.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@data_dir_option
def list_(channel: str | None, profile: str | None, as_json: bool, data_dir: str | None) -> None:
    """List conversations, most recently active first.

    FOLDER is where the agent runs ("?" for conversations carried over from
    an older release, until they are next used); SESSION the agent session
    the next turn resumes; LAST how the last turn ended, or running.
    """

    async def go(store: SQLiteStore) -> tuple[list[Conversation], Path]:
        convs = await store.conversations(channel=channel)
        return [c for c in convs if profile is None or c.key.route.name == profile], store.path

    convs, path = _read(data_dir, go)
    if as_json:
        for conv in convs:
            view.echo_json(view.conversation_dict(conv))
    elif convs:
        rows = [
            (
                c.id,
                c.label,
                view.cwd(c),
                c.session_id or "-",
                str(c.turn_count),
                view.status(c),
                view.when(c.updated_at),
            )
            for c in convs
        ]
        head = ("ID", "LABEL", "FOLDER", "SESSION", "TURNS", "LAST", "ACTIVE")
        for line in view.table(rows, head):
            click.echo(line)
    if not convs:
        given = (("channel", channel), ("profile", profile))
        filters = " and ".join(f"{name} {value!r}" for name, value in given if value is not None)
        matching = f" with {filters}" if filters else ""
        where = "" if path.exists() else " (no store there yet)"
        click.echo(f"no conversations{matching} in {path}{where}", err=True)


# --- show ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunningTurn:
    """The turn running now, read back from the log."""

    turn: int
    message: str
    attachments: list[dict[str, str]]
    from_users: list[str]
    session_id: str
    started_at: float
    partial: str
    cancel_requested: bool
    process_alive: bool


async def _running(store: SQLiteStore, conv: Conversation) -> RunningTurn | None:
    """The running turn's events: its message, session, streamed text so far."""
    from bridge.store import records

    if not conv.running_turn:
        return None
    queued: dict[str, Any] = {}
    session, started, cancelled = "", 0.0, False
    parts: list[str] = []
    after = conv.first_event - 1
    while events := await store.read(conv.id, after):
        for e in events:
            if e.turn != conv.running_turn:
                continue
            if e.type == records.TURN_QUEUED:
                queued = dict(e.data)
            elif e.type == records.TURN_STARTED:
                session, started = str(e.data.get("session_id", "")), e.at
            elif e.type == records.TURN_PARTIAL:
                parts.append(str(e.data.get("text", "")))
            elif e.type == records.CONVERSATION_CANCEL:
                cancelled = True
        after = events[-1].id
    return RunningTurn(
        turn=conv.running_turn,
        message=str(queued.get("text", "")),
        attachments=[dict(a) for a in queued.get("attachments", ())],
        from_users=[str(u) for u in queued.get("from_users", ())],
        session_id=session,
        started_at=started,
        partial="".join(parts),
        cancel_requested=cancelled,
        process_alive=view.is_live(conv),
    )


def _turn_dict(t: TranscriptTurn) -> dict[str, Any]:
    data = asdict(t)
    data["attachments"] = [dict(a) for a in t.attachments]
    data["from_users"] = list(t.from_users)
    return data


def _lines(label: str, text: str) -> list[str]:
    """``  label: text``, continuation lines indented under it; control
    characters escaped (see :func:`view.text`)."""
    first, *rest = view.text(text).split("\n")
    return [f"  {view.cell(label)}: {first}", *(f"    {line}" for line in rest)]


def _senders(users: tuple[str, ...] | list[str]) -> str:
    return ", ".join(users) or "message"


@sessions.command()
@click.argument("conversation")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Last N turns."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@data_dir_option
def show(conversation: str, limit: int, as_json: bool, data_dir: str | None) -> None:
    """Show a conversation and its last turns: each turn's message, who sent
    it, how it ended, and the reply or the error."""

    async def go(
        store: SQLiteStore,
    ) -> tuple[Conversation, list[TranscriptTurn], Any, RunningTurn | None]:
        conv = await _resolve(store, conversation)
        turns = await store.transcript(conv.id, limit=limit)
        return conv, turns, await store.get_state(conv.id), await _running(store, conv)

    conv, turns, state, running = _read(data_dir, go)
    if as_json:
        view.echo_json(
            view.conversation_dict(conv)
            | {
                "state": state,
                "turns": [_turn_dict(t) for t in turns],
                "running": None if running is None else asdict(running),
            }
        )
        return
    route = conv.key.route
    profile = route.name or route.profile
    fields = [
        ("id", conv.id),
        ("label", conv.label),
        ("profile", profile if profile == route.profile else f"{profile} ({route.profile})"),
        ("folder", route.cwd or "? (carried over from an older release; set by its next turn)"),
        ("agent session", conv.session_id or "- (the next turn starts a fresh one)"),
        ("session name", conv.session_name),
        ("turns", str(conv.turn_count)),
        ("last status", view.status(conv)),
        ("created", view.when(conv.created_at)),
        ("last active", view.when(conv.updated_at)),
    ]
    if state is not None:
        fields.append(("state", json.dumps(state, ensure_ascii=False)))
    width = max(len(name) for name, _ in fields) + 1
    for name, value in fields:
        click.echo(f"{name + ':':<{width}} {view.cell(value)}")
    completed = conv.turn_count - (1 if running else 0)
    if len(turns) < completed:
        older = "--limit shows more" if len(turns) == limit else "older ones were trimmed"
        click.echo(f"\n(the last {view.plural(len(turns), 'turn')} of {completed}; {older})")
    for t in turns:
        click.echo(
            f"\n#{t.turn}  {view.when(t.started_at)}  {t.status}  exit {t.exit_code}  "
            f"{t.duration_ms} ms"
        )
        for line in _lines(_senders(t.from_users), t.message):
            click.echo(line)
        if t.error is None:
            for line in _lines(profile, t.reply):
                click.echo(line)
        else:
            for line in _lines("error", t.error):
                click.echo(line)
            if t.hint:
                click.echo(f"  hint: {view.cell(t.hint)}")
    if running is not None:
        click.echo(
            f"\n#{running.turn}  {view.when(running.started_at)}  {_running_note(running, conv)}"
        )
        for line in _lines(_senders(running.from_users), running.message):
            click.echo(line)
        if running.partial:
            for line in _lines(f"{profile} (so far)", running.partial):
                click.echo(line)


def _running_note(running: RunningTurn, conv: Conversation) -> str:
    if not running.process_alive:
        return (
            "abandoned: the process running it is gone "
            f"(`agentproc sessions cancel {conv.id}` closes it now)"
        )
    return "running, cancel requested" if running.cancel_requested else "running"


# --- writes ----------------------------------------------------------------------------------


def _find(data_dir: str | None, ref: str) -> Conversation:
    """The conversation ``ref`` names, looked up read-only."""

    async def go(store: SQLiteStore) -> Conversation:
        return await _resolve(store, ref)

    return _read(data_dir, go)


def _named(conv: Conversation) -> str:
    return f"{view.cell(conv.label)} ({conv.id})"


@sessions.command()
@click.argument("conversation")
@data_dir_option
def reset(conversation: str, data_dir: str | None) -> None:
    """Make the conversation's next turn start a fresh agent session.

    Its transcript and state are kept; only the link to the agent session
    is dropped.
    """
    conv = _find(data_dir, conversation)

    async def go(store: SQLiteStore) -> None:
        await store.reset(conv.id, by=_by())

    _write(data_dir, go)
    click.echo(f"reset: {_named(conv)} starts a fresh agent session on its next turn")


@sessions.command()
@click.argument("conversation")
@data_dir_option
def cancel(conversation: str, data_dir: str | None) -> None:
    """Cancel the conversation's running turn and drop its waiting messages.

    The turn runs in another process (a bridge, a chat): it stops the agent
    when it sees the request, within a moment. A turn whose process is gone
    is closed as abandoned at once.
    """
    conv = _find(data_dir, conversation)

    async def go(store: SQLiteStore) -> tuple[int, int, bool]:
        event = await store.cancel(conv.id, by=_by(), reason="agentproc sessions cancel")
        closed = await store.recover(conv.id) if event.turn else []
        return event.turn, len(event.data.get("dropped", ())), bool(closed)

    turn, dropped, closed = _write(data_dir, go)
    if closed:
        click.echo(
            f"cancel: turn {turn} of {_named(conv)} had no process running it any more: "
            "closed it as abandoned"
        )
    elif turn:
        click.echo(
            f"cancel: asked turn {turn} of {_named(conv)} to stop; the process running it "
            "stops the agent when it sees the request"
        )
    else:
        click.echo(f"cancel: no turn is running in {_named(conv)}")
    if dropped:
        click.echo(f"dropped {view.plural(dropped, 'waiting message')}")


def _needs_confirmation(command: str, yes: bool, hint: str) -> bool:
    """Whether to ask at the terminal before deleting. Without a terminal and
    without --yes, refuses (exit 2) with ``hint``."""
    if yes:
        return False
    if sys.stdin.isatty():
        return True
    raise BridgeError(
        f"not deleting anything: {command} asks for confirmation and stdin is not a terminal",
        hint=hint,
        exit_code=2,
    )


@sessions.command()
@click.argument("conversation")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
def delete(conversation: str, yes: bool, data_dir: str | None) -> None:
    """Delete a conversation with its transcript and state.

    At a terminal you are asked to confirm; otherwise (a script, a pipe)
    pass --yes, or nothing is deleted. A conversation whose turn is running
    is refused: cancel the turn first.
    """
    from bridge.store.errors import NotFound

    conv = _find(data_dir, conversation)
    if conv.running_turn and view.is_live(conv):
        raise BridgeError(
            f"turn {conv.running_turn} of {_named(conv)} is running; nothing was deleted",
            hint=f"cancel it first (agentproc sessions cancel {conv.id}), or wait for it to end",
        )
    hint = f"add --yes: agentproc sessions delete {conv.id} --yes"
    if _needs_confirmation("delete", yes, hint):
        click.echo(
            f"{_named(conv)}  {view.cell(view.cwd(conv))}  {view.plural(conv.turn_count, 'turn')}  "
            f"last active {view.when(conv.updated_at)}",
            err=True,
        )
        if not click.confirm(
            "Delete this conversation with its transcript?", default=False, err=True
        ):
            click.echo("nothing deleted", err=True)
            sys.exit(1)

    async def go(store: SQLiteStore) -> bool:
        return await store.delete(conv.id)

    if not _write(data_dir, go):
        raise NotFound(
            f"{_named(conv)} was deleted meanwhile", hint="`agentproc sessions list` shows the rest"
        )
    click.echo(f"deleted {_named(conv)}")


# --- prune -----------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_EXAMPLES = "30d, 12h, 90m, 3600s or 2w"


def _duration(value: str) -> float:
    """Seconds in an age like ``30d``; the unit is required (s, m, h, d, w)."""
    match = _DURATION.match(value)
    if not match:
        raise click.BadParameter(
            f"{value!r} is not a duration like {_DURATION_EXAMPLES}", param_hint="'--older-than'"
        )
    number, unit = match.group(1), match.group(2).lower()
    if not unit:
        raise click.BadParameter(
            f"{value!r} has no unit: add one, like {number}d (days), {number}h, {number}m, "
            f"{number}s or {number}w",
            param_hint="'--older-than'",
        )
    if unit not in _UNIT:
        raise click.BadParameter(
            f"{value!r}: unknown unit {unit!r}; use s, m, h, d or w (like {_DURATION_EXAMPLES})",
            param_hint="'--older-than'",
        )
    return float(number) * _UNIT[unit]


@sessions.command()
@click.option(
    "--older-than",
    required=True,
    metavar="AGE",
    help="Idle for longer than AGE: a number and a unit, s m h d or w (30d, 12h, 90m).",
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
def prune(older_than: str, dry_run: bool, yes: bool, data_dir: str | None) -> None:
    """Delete conversations (with transcript and state) idle for longer than AGE.

    The conversations that would go are listed first. At a terminal you are
    asked to confirm; otherwise (a script, a pipe) pass --yes, or nothing is
    deleted. --dry-run only lists them. Conversations with a running turn
    are kept.
    """
    seconds = _duration(older_than)
    hint = (
        "check what would go with --dry-run, then add --yes: "
        f"agentproc sessions prune --older-than {older_than} --yes"
    )
    ask = not dry_run and _needs_confirmation("prune", yes, hint)
    now = time.time()
    cutoff = now - seconds

    async def candidates(store: SQLiteStore) -> list[Conversation]:
        convs = await store.conversations()
        return [
            c for c in convs if c.updated_at < cutoff and not c.running_turn and not view.is_live(c)
        ]

    old = _read(data_dir, candidates)
    if not old:
        click.echo(f"nothing to prune: no conversation idle for longer than {older_than}")
        return
    if dry_run or ask:
        rows = [
            (
                c.id,
                c.label,
                view.cwd(c),
                view.plural(c.turn_count, "turn"),
                f"last active {view.when(c.updated_at)} ({view.ago(c.updated_at, now)} ago)",
            )
            for c in old
        ]
        for line in view.table(rows):
            click.echo(line)
    count = view.plural(len(old), "conversation")
    if dry_run:
        click.echo(f"would prune {count} (dry run: nothing deleted)")
        return
    if ask and not click.confirm(
        f"Delete these {count} with their transcripts?", default=False, err=True
    ):
        click.echo("nothing deleted", err=True)
        sys.exit(1)

    async def go(store: SQLiteStore) -> int:
        return await store.prune(cutoff)

    click.echo(f"pruned {view.plural(_write(data_dir, go), 'conversation')}")
