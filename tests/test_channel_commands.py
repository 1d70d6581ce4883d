"""Chat commands, parsed (bridge.channels.commands)."""

from __future__ import annotations

import pytest

from bridge.channels.commands import COMMANDS, Command, help_text, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/new", Command("new")),
        ("  /NEW  ", Command("new")),
        ("/cancel now please", Command("cancel", "now please")),
        ("/status@agentbot", Command("status")),
        ("/status@AgentBot", Command("status")),
        ("/status@otherbot", None),
        ("/whoami", Command("whoami")),
        ("/help\nmore lines", Command("help", "more lines")),
        ("/compact", None),  # the agent's own command: passed on
        ("/", None),
        ("hello /new", None),
        ("", None),
        ("new", None),
    ],
    ids=repr,
)
def test_parse(text: str, expected: Command | None) -> None:
    assert parse(text, bot_username="@agentbot") == expected


def test_help_lists_every_command() -> None:
    text = help_text(agent="claude")
    assert text.startswith("You are talking to claude.")
    for name in COMMANDS:
        assert f"/{name} - " in text
