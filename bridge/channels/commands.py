"""The chat commands every chat channel understands, parsed and worded once.

``/new`` (a fresh agent session), ``/cancel`` (stop the running turn),
``/status`` (route, session, running turn), ``/help``, ``/whoami`` (your id,
for an admin). A command is the first word of a message, with its slash;
Telegram's ``/cmd@botname`` form is understood, and a command addressed to
another bot is not ours. Anything else, including an unknown ``/word``, is
a message for the agent: agents have commands of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["COMMANDS", "Command", "help_text", "parse"]

#: Each command and what it does, in the order /help lists them.
COMMANDS: dict[str, str] = {
    "new": "start a fresh conversation with the agent (it forgets this one)",
    "cancel": "stop the reply being written and drop the messages waiting",
    "status": "which agent this is, its session, and whether it is busy",
    "whoami": "your id here, to give an admin who lets people in",
    "help": "this list",
}


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    #: What followed the command on its line and after (may be "").
    rest: str = ""


def parse(
    text: str, *, bot_username: str = "", extra: Mapping[str, str] | None = None
) -> Command | None:
    """The command ``text`` starts with, or None for a message to the agent.
    ``extra`` are a bot's own commands (name: help), known besides ours."""
    stripped = text.lstrip()
    if not stripped.startswith("/"):
        return None
    word, _, rest = stripped[1:].partition(" ")
    word, newline, more = word.partition("\n")
    if newline:
        rest = more + (" " + rest if rest else "")
    name, _, addressee = word.partition("@")
    if addressee and addressee.lower() != bot_username.lower().lstrip("@"):
        return None  # /cmd@otherbot in a group
    name = name.lower()
    if name not in COMMANDS and name not in (extra or {}):
        return None
    return Command(name, rest.strip())


def help_text(*, agent: str = "", extra: Mapping[str, str] | None = None) -> str:
    """What /help answers (``extra``: a bot's own commands, listed first)."""
    head = f"You are talking to {agent}." if agent else "You are talking to an agent."
    lines = [head]
    if extra:
        lines.append("This bot's commands:")
        lines += [f"/{name} - {what}" for name, what in extra.items()]
    anything = "Anything else" if extra else "Anything"
    lines.append(f"{anything} you write goes to it; these commands are for the bridge:")
    lines += [f"/{name} - {what}" for name, what in COMMANDS.items()]
    return "\n".join(lines)
