"""Reading Slack's events and button presses: what the bot reads, how a
conversation is keyed, and garbage of every shape ignored, never raised."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.channels.slack_events import command_text, parse_message, parse_press

BOT = "UBOT"
ANN = "U0ANN"


def message(**fields: Any) -> dict[str, Any]:
    return {"type": "message", "user": ANN, "channel": "C1", "ts": "10.1", "text": "hi", **fields}


@pytest.mark.parametrize(
    ("event", "thread", "text", "private", "mentioned"),
    [
        (message(channel_type="channel", thread_ts="9.0"), "C1/9.0", "hi", False, False),
        (message(type="app_mention", text=f"<@{BOT}> go"), "C1/10.1", "go", False, True),
        (
            message(type="app_mention", text=f"<@{BOT}|agent> go", thread_ts="9.0"),
            "C1/9.0",
            "go",
            False,
            True,
        ),
        (message(channel="D1", channel_type="im"), "D1", "hi", True, False),
        (message(channel="D1", channel_type="im", thread_ts="9.0"), "D1/9.0", "hi", True, False),
        (
            message(channel="D1", channel_type="im", text=f"<@{BOT}> x &lt;b&gt; &amp;"),
            "D1",
            "x <b> &",
            True,
            True,
        ),
        (
            message(channel_type="channel", text="ask <@U0BOB>", thread_ts="9.0"),
            "C1/9.0",
            "ask <@U0BOB>",
            False,
            False,
        ),
        (
            message(channel_type="channel", subtype="thread_broadcast", thread_ts="9.0"),
            "C1/9.0",
            "hi",
            False,
            False,
        ),
    ],
)
def test_what_a_person_said(
    event: dict[str, Any], thread: str, text: str, private: bool, mentioned: bool
) -> None:
    said = parse_message(event, BOT)
    assert said is not None
    assert (said.thread, said.text, said.private, said.mentioned) == (
        thread,
        text,
        private,
        mentioned,
    )
    assert said.platform_id == "C1:10.1" or said.platform_id == "D1:10.1"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"type": "reaction_added", "user": ANN},
        message(subtype="message_changed"),
        message(subtype="bot_message"),
        message(bot_id="B1"),
        message(user=BOT),
        message(user=None),
        message(user=42),
        message(channel=["C1"]),
        message(ts=None),
        message(channel_type="channel", text=f"<@{BOT}> hi"),  # its app_mention is the one read
        {"type": "message", "text": "no user"},
    ],
)
def test_what_the_bot_does_not_read(event: dict[str, Any]) -> None:
    assert parse_message(event, BOT) is None


def test_odd_fields_are_read_safely() -> None:
    said = parse_message(message(text=None, files="nope", thread_ts=5), BOT)
    assert said is not None and said.text == "" and said.files == () and said.thread == "C1/10.1"
    said = parse_message(message(files=[{"id": "F1"}, "junk", None]), BOT)
    assert said is not None and said.files == ({"id": "F1"},)


def press(**fields: Any) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": ANN, "name": "ann"},
        "container": {
            "type": "message",
            "channel_id": "C1",
            "message_ts": "11.0",
            "thread_ts": "9.0",
        },
        "actions": [{"action_id": "a", "value": "approve:7:once"}],
        **fields,
    }


def test_a_button_press() -> None:
    got = parse_press(press())
    assert got is not None
    assert (got.thread, got.user, got.value, got.message_ts) == (
        "C1/9.0",
        ANN,
        "approve:7:once",
        "11.0",
    )
    top = press(container={"channel_id": "D1", "message_ts": "11.0"})
    assert parse_press(top).thread == "D1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"type": "view_submission"},
        press(actions=[]),
        press(actions="x"),
        press(actions=[None]),
        press(user="ann"),
        press(container=None),
        press(container={"channel_id": 1, "message_ts": "1"}),
    ],
)
def test_garbage_presses_are_ignored(payload: dict[str, Any]) -> None:
    assert parse_press(payload) is None


def test_a_press_without_a_value_sends_empty_data() -> None:
    got = parse_press(press(actions=[{"action_id": "a"}]))
    assert got is not None and got.value == ""


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("status", "/status"),
        ("  Status  ", "/status"),
        ("/new", "/new"),
        ("!help", "/help"),
        ("help me with this", "help me with this"),
        ("statuses", "statuses"),
        ("deploy prod", "/deploy prod"),
        ("", ""),
    ],
)
def test_command_words(text: str, want: str) -> None:
    commands = {"new", "cancel", "status", "whoami", "help", "deploy"}
    assert command_text(text, commands, args_for={"deploy"}) == want
