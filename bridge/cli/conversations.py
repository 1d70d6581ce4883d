"""``agentproc chat`` and ``agentproc sessions``: conversations and their store."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from bridge.store.sessions import Conversation, ConversationKey, SessionStore

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Folder of the session store (default: $AGENTPROC_DATA_DIR or the user data folder).",
)


def _store(data_dir: str | None) -> SessionStore:
    from bridge.store.sqlite import open_store

    return open_store(data_dir)


@click.command()
@click.argument("profile")
@click.option("--session-name", default="default", show_default=True, help="Which conversation.")
@click.option("--from", "from_user", default=None, help="Your name for AGENT_FROM_USER.")
@data_dir_option
def chat(profile: str, session_name: str, from_user: str | None, data_dir: str | None) -> None:
    """Chat with PROFILE in the terminal (a profile file or folder, a bundled
    profile's name, or bundled:NAME for the bundled one whatever the current
    directory holds).

    Replies stream as they arrive. /new starts a fresh agent session, /cancel
    or Ctrl-C cancels a running turn, /session and /history show the
    conversation, /quit, a second Ctrl-C or Ctrl-D leave. Starting again with
    the same --session-name resumes the same agent session. With piped input,
    each line is one message.

    \b
    Exit status: 0, or with piped input 1 when any turn failed (the others
    still ran); 2 for a usage or profile error; 126 or 127 when the profile's
    command cannot be run (with piped input nothing is sent; at a terminal
    the chat says so and starts anyway, so you can install it meanwhile).
    """
    from bridge.channels.chat import run_chat
    from bridge.turn.bundled import load_profile_arg

    from .main import cannot_start

    prof, cwd = load_profile_arg(profile)
    if cwd is not None:
        # A bundled profile's turns run where the chat was started.
        prof = prof.model_copy(update={"cwd": cwd})
    problem = cannot_start(prof)
    if problem is not None:
        if not sys.stdin.isatty():
            raise problem
        click.echo(f"warning: {problem.detail}", err=True)
        if problem.hint:
            click.echo(f"hint: {problem.hint}", err=True)
        click.echo("warning: every message will fail until this is fixed", err=True)
    user = from_user if from_user is not None else os.environ.get("USER", "")
    sys.exit(run_chat(lambda: _store(data_dir), prof, session_name=session_name, from_user=user))


@click.group()
def sessions() -> None:
    """Inspect and manage the session store.

    A conversation is named CHANNEL:KEY@PROFILE, as `sessions list` prints it
    (for `agentproc chat`, terminal:<session-name>@<profile>).
    """


def _parse_key(text: str) -> ConversationKey:
    from bridge.store.sessions import ConversationKey

    channel, sep, rest = text.partition(":")
    key, at, profile = rest.rpartition("@")
    if not sep or not at or not channel or not key or not profile:
        raise click.BadParameter(
            f"{text!r} is not CHANNEL:KEY@PROFILE (e.g. terminal:default@echo); "
            "`agentproc sessions list` shows the names",
            param_hint="'CONVERSATION'",
        )
    return ConversationKey(channel, key, profile)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _conv_dict(conv: Conversation) -> dict[str, Any]:
    return {
        "conversation": str(conv.key),
        "channel": conv.key.channel,
        "key": conv.key.key,
        "profile": conv.key.profile,
        "session_id": conv.session_id,
        "session_name": conv.session_name,
        "turn_count": conv.turn_count,
        "last_status": conv.last_status,
        "created_at": conv.created_at,
        "updated_at": conv.updated_at,
    }


def _run(coro: Any) -> Any:
    import anyio

    return anyio.run(lambda: coro)


@sessions.command("list")
@click.option("--channel", help="Only this channel.")
@click.option("--profile", help="Only this profile.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@data_dir_option
def list_(channel: str | None, profile: str | None, as_json: bool, data_dir: str | None) -> None:
    """List conversations, most recent first."""

    async def go() -> list[Conversation]:
        async with _store(data_dir) as store:
            return await store.conversations(channel=channel, profile=profile)

    convs = _run(go())
    if as_json:
        for conv in convs:
            click.echo(json.dumps(_conv_dict(conv), ensure_ascii=False))
        return
    if not convs:
        click.echo("no conversations", err=True)
        return
    rows = [
        (
            str(c.key),
            c.session_id or "-",
            str(c.turn_count),
            c.last_status or "-",
            _when(c.updated_at),
        )
        for c in convs
    ]
    head = ("CONVERSATION", "SESSION", "TURNS", "LAST", "UPDATED")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@sessions.command()
@click.argument("conversation")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@data_dir_option
def show(conversation: str, limit: int, as_json: bool, data_dir: str | None) -> None:
    """Show a conversation and its last turns."""
    key = _parse_key(conversation)

    async def go() -> tuple[Conversation | None, list[Any], Any]:
        async with _store(data_dir) as store:
            conv = await store.get(key)
            if conv is None:
                return None, [], None
            return conv, await store.transcript(key, limit=limit), await store.get_state(key)

    conv, turns, state = _run(go())
    if conv is None:
        click.echo(f"error: no conversation {conversation}", err=True)
        click.echo("hint: `agentproc sessions list` shows the names", err=True)
        sys.exit(1)
    if as_json:
        data = _conv_dict(conv) | {"state": state, "turns": [t.to_dict() for t in turns]}
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    for name, value in _conv_dict(conv).items():
        if name.endswith("_at"):
            value = _when(value)
        click.echo(f"{name}: {value if value != '' else '-'}")
    if state is not None:
        click.echo(f"state: {json.dumps(state, ensure_ascii=False)}")
    for t in turns:
        click.echo(f"\n#{t.turn} {_when(t.started_at)} exit {t.exit_code} {t.duration_ms} ms")
        click.echo(f"  you: {t.message}")
        click.echo(f"  agent: {t.reply}" if t.error is None else f"  error: {t.error}")


@sessions.command()
@click.argument("conversation")
@data_dir_option
def reset(conversation: str, data_dir: str | None) -> None:
    """Make the conversation's next turn start a fresh agent session."""
    key = _parse_key(conversation)

    async def go() -> bool:
        async with _store(data_dir) as store:
            if await store.get(key) is None:
                return False
            await store.reset(key)
            return True

    if not _run(go()):
        click.echo(f"error: no conversation {conversation}", err=True)
        sys.exit(1)
    click.echo(f"reset: {conversation} starts a fresh agent session on its next turn")


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


def _ago(ts: float, now: float) -> str:
    """How long ago ``ts`` was, roughly: 40s, 5m, 3h, 12d."""
    age = max(now - ts, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{int(age // size)}{unit}"
    return f"{int(age)}s"


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
    deleted. --dry-run only lists them.
    """
    seconds = _duration(older_than)
    interactive = sys.stdin.isatty()
    if not (dry_run or yes or interactive):
        click.echo(
            "error: not deleting anything: prune asks for confirmation and stdin is not a terminal",
            err=True,
        )
        click.echo(
            f"hint: check what would go with --dry-run, then add --yes: "
            f"agentproc sessions prune --older-than {older_than} --yes",
            err=True,
        )
        sys.exit(2)
    now = time.time()
    cutoff = now - seconds

    async def candidates() -> list[Conversation]:
        async with _store(data_dir) as store:
            return [c for c in await store.conversations() if c.updated_at < cutoff]

    old = _run(candidates())
    plural = "s" if len(old) != 1 else ""
    if not old:
        click.echo(f"nothing to prune: no conversation idle for longer than {older_than}")
        return
    if dry_run or not yes:
        for conv in old:
            turns = f"{conv.turn_count} turn{'s' if conv.turn_count != 1 else ''}"
            click.echo(
                f"{conv.key}  {turns}  last used {_when(conv.updated_at)} "
                f"({_ago(conv.updated_at, now)} ago)"
            )
    if dry_run:
        click.echo(f"would prune {len(old)} conversation{plural} (dry run: nothing deleted)")
        return
    if not yes and not click.confirm(
        f"Delete these {len(old)} conversation{plural} with their transcripts?",
        default=False,
        err=True,
    ):
        click.echo("nothing deleted", err=True)
        sys.exit(1)

    async def go() -> int:
        async with _store(data_dir) as store:
            return int(await store.prune(cutoff))

    count = _run(go())
    click.echo(f"pruned {count} conversation{'s' if count != 1 else ''}")
