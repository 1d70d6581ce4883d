"""``agentproc chat``: a conversation in the terminal.

It still keeps its conversations in the session-map store
(:mod:`bridge.store.sqlite`); ``agentproc sessions`` (:mod:`bridge.cli.sessions`)
reads the conversation log store.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from bridge.store.sessions import SessionStore

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
