"""The access rules of chat channels, table by table (bridge.channels.access)."""

from __future__ import annotations

import pytest

from bridge.channels.access import POLICIES, Action, Sender, Where, decide

STRANGER = Sender("99", "Eve")
PAIRED = Sender("98", "Pat", paired=True)
USER = Sender("42", "Ann", user="ann")
ADMIN = Sender("1", "Root", user="root", admin=True)
PRIVATE = Where(private=True)
GROUP_ADDRESSED = Where(private=False, addressed=True)
GROUP_CHATTER = Where(private=False, addressed=False)


@pytest.mark.parametrize(
    ("policy", "sender", "where", "command", "action"),
    [
        # pairing (the default)
        ("pairing", STRANGER, PRIVATE, "", Action.PAIR),
        ("pairing", STRANGER, PRIVATE, "new", Action.PAIR),
        ("pairing", STRANGER, PRIVATE, "whoami", Action.TELL_ID),
        ("pairing", STRANGER, GROUP_ADDRESSED, "", Action.GO_PRIVATE),
        ("pairing", STRANGER, GROUP_CHATTER, "", Action.IGNORE),
        ("pairing", PAIRED, PRIVATE, "", Action.ANSWER),
        ("pairing", USER, PRIVATE, "", Action.ANSWER),
        ("pairing", USER, GROUP_ADDRESSED, "", Action.ANSWER),
        ("pairing", USER, GROUP_CHATTER, "", Action.IGNORE),
        # allowlist
        ("allowlist", STRANGER, PRIVATE, "", Action.TELL_ID),
        ("allowlist", STRANGER, GROUP_ADDRESSED, "", Action.TELL_ID),
        ("allowlist", PAIRED, PRIVATE, "", Action.ANSWER),
        ("allowlist", USER, PRIVATE, "", Action.ANSWER),
        # open
        ("open", STRANGER, PRIVATE, "", Action.ANSWER),
        ("open", STRANGER, GROUP_CHATTER, "", Action.IGNORE),
        # disabled
        ("disabled", ADMIN, PRIVATE, "", Action.IGNORE),
        ("disabled", STRANGER, PRIVATE, "whoami", Action.IGNORE),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_who_is_answered(
    policy: str, sender: Sender, where: Where, command: str, action: Action
) -> None:
    assert decide(policy, sender, where, command=command).action is action  # type: ignore[arg-type]


def test_a_group_can_be_read_whole_when_configured() -> None:
    assert decide("pairing", USER, GROUP_CHATTER, groups_read_all=True).action is Action.ANSWER
    assert decide("pairing", STRANGER, GROUP_CHATTER, groups_read_all=True).action is (
        Action.IGNORE
    ), "a stranger chatting in a group read whole is not answered line by line"
    assert decide("pairing", STRANGER, GROUP_ADDRESSED, groups_read_all=True).action is (
        Action.GO_PRIVATE
    )


@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "disabled"])
def test_an_admin_is_answered_as_an_admin_everywhere_but_disabled(policy: str) -> None:
    decision = decide(policy, ADMIN, PRIVATE)  # type: ignore[arg-type]
    assert decision.action is Action.ANSWER and decision.admin


@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "open"])
def test_a_stranger_never_reaches_an_agent_unless_the_channel_is_open(policy: str) -> None:
    for where in (PRIVATE, GROUP_ADDRESSED, GROUP_CHATTER):
        for command in ("", "new", "cancel", "status", "help", "whoami"):
            got = decide(policy, STRANGER, where, command=command, groups_read_all=True)  # type: ignore[arg-type]
            assert got.action is not Action.ANSWER, (policy, where, command)


def test_names_recorded_for_turns() -> None:
    assert USER.name == "ann" and PAIRED.name == "id:98" and STRANGER.name == "id:99"
