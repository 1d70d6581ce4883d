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
    from .sessions import Conversation, ConversationKey, SessionStore

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Folder of the session store (default: $AGENTPROC_DATA_DIR or the user data folder).",
)


def _store(data_dir: str | None) -> SessionStore:
    from .store_sqlite import open_store

    return open_store(data_dir)


@click.command()
@click.argument("profile")
@click.option("--session-name", default="default", show_default=True, help="Which conversation.")
@click.option("--from", "from_user", default=None, help="Your name for AGENT_FROM_USER.")
@data_dir_option
def chat(profile: str, session_name: str, from_user: str | None, data_dir: str | None) -> None:
    """Chat with PROFILE in the terminal.

    Replies stream as they arrive. /new starts a fresh agent session, /cancel
    or Ctrl-C cancels a running turn, /session and /history show the
    conversation, /quit, a second Ctrl-C or Ctrl-D leave. Starting again with
    the same --session-name resumes the same agent session. With piped input,
    each line is one message.
    """
    from .bundled import load_profile_arg
    from .chat import run_chat

    prof, cwd = load_profile_arg(profile)
    if cwd is not None:
        # A bundled profile's turns run where the chat was started.
        prof = prof.model_copy(update={"cwd": cwd})
    user = from_user if from_user is not None else os.environ.get("USER", "")
    sys.exit(run_chat(lambda: _store(data_dir), prof, session_name=session_name, from_user=user))


@click.group()
def sessions() -> None:
    """Inspect and manage the session store.

    A conversation is named CHANNEL:KEY@PROFILE, as `sessions list` prints it
    (for `agentproc chat`, terminal:<session-name>@<profile>).
    """


def _parse_key(text: str) -> ConversationKey:
    from .sessions import ConversationKey

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


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(value: str) -> float:
    match = _DURATION.match(value)
    if not match:
        raise click.BadParameter(
            f"{value!r} is not a duration like 30d, 12h, 90m or 3600s", param_hint="'--older-than'"
        )
    return float(match.group(1)) * _UNIT[match.group(2)]


@sessions.command()
@click.option("--older-than", required=True, help="Age like 30d, 12h, 90m or 3600s.")
@data_dir_option
def prune(older_than: str, data_dir: str | None) -> None:
    """Delete conversations (with transcript and state) not used for a while."""
    cutoff = time.time() - _duration(older_than)

    async def go() -> int:
        async with _store(data_dir) as store:
            return int(await store.prune(cutoff))

    count = _run(go())
    click.echo(f"pruned {count} conversation{'s' if count != 1 else ''}")
