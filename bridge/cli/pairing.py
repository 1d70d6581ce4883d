"""``agentproc pairing``: let people on chat channels in, or keep them out.

A person a channel does not know gets a code from the bot; an admin runs
``agentproc pairing approve CODE`` (on the machine of the bridge, with the
same data folder) and the person is paired on that channel. The store is
opened for writing, so a store from an older release is upgraded first.
Exit status: 0; 1 when there is no such code waiting or person paired, or
the store cannot be used.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

import click

from bridge.errors import BridgeError

from .stores import data_dir_option, write

if TYPE_CHECKING:
    from bridge.store.records import Pairing
    from bridge.store.sqlite import SQLiteStore


class _NotFound(BridgeError):
    """No pairing matches (exit 1)."""


def _by() -> str:
    """Who decided, as recorded: the login name of whoever ran the command."""
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "admin"


@click.group()
def pairing() -> None:
    """Let people on chat channels in (pairing codes), or keep them out.

    A person the bot does not know gets a code; approve it here. Codes are
    valid for an hour.
    """


@pairing.command("list")
@click.option("--channel", help="Only this channel (telegram, slack, discord).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@data_dir_option
def list_(channel: str | None, as_json: bool, data_dir: str | None) -> None:
    """Codes waiting for an admin, and the people paired."""

    async def go(store: SQLiteStore) -> list[Pairing]:
        return await store.pairings(channel)

    found = write(data_dir, go)
    if as_json:
        from dataclasses import asdict

        for p in found:
            click.echo(json.dumps(asdict(p), ensure_ascii=False))
        return
    if not found:
        click.echo("no codes waiting and nobody paired" + (f" on {channel}" if channel else ""))
        return
    now = time.time()
    for p in found:
        if p.status == "pending":
            left = max(0, int((p.expires_at - now) // 60))
            state = f"waiting, {left} min left"
        else:
            state = f"paired by {p.decided_by}"
        click.echo(f"{p.code}  {p.channel:<9} {p.user_id:<14} {p.name}  ({state})")


@pairing.command()
@click.argument("code")
@data_dir_option
def approve(code: str, data_dir: str | None) -> None:
    """Let the person who was given CODE in."""
    _decide(code, approve=True, data_dir=data_dir)


@pairing.command()
@click.argument("code")
@data_dir_option
def deny(code: str, data_dir: str | None) -> None:
    """Refuse CODE (the person can ask again later)."""
    _decide(code, approve=False, data_dir=data_dir)


def _decide(code: str, *, approve: bool, data_dir: str | None) -> None:
    async def go(store: SQLiteStore) -> Pairing | None:
        return await store.decide_pairing(code, approve=approve, by=_by())

    decided = write(data_dir, go)
    if decided is None:
        raise _NotFound(
            f"no code {code!r} is waiting",
            hint="it may be mistyped, decided already, or expired (codes last an hour); "
            "`agentproc pairing list` shows those waiting",
        )
    verb = "paired" if approve else "refused"
    click.echo(f"{verb}: {decided.name} ({decided.user_id}) on {decided.channel}")


@pairing.command()
@click.argument("channel")
@click.argument("user_id")
@data_dir_option
def revoke(channel: str, user_id: str, data_dir: str | None) -> None:
    """Unpair USER_ID on CHANNEL: they must pair again."""

    async def go(store: SQLiteStore) -> bool:
        return await store.unpair(channel, user_id)

    if not write(data_dir, go):
        raise _NotFound(
            f"{user_id} is not paired on {channel}",
            hint="`agentproc pairing list` shows who is",
        )
    click.echo(f"unpaired: {user_id} on {channel}")
