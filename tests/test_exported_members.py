"""Pin the public surfaces of ``agentproc`` and ``bridge``: adding or removing a name is
a decision."""

from __future__ import annotations

from importlib.metadata import version

import pytest

import agentproc

EXPECTED = [
    "Agent",
    "AgentResult",
    "Attachment",
    "Context",
    "HistoryEntry",
    "Invocation",
    "PermissionDecision",
    "ProtocolError",
    "__version__",
    "append_history",
    "create_profile",
    "load_history",
    "session_file_path",
]


def test_all_is_pinned() -> None:
    assert sorted(agentproc.__all__) == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in agentproc.__all__:
        assert getattr(agentproc, name) is not None, name


def test_public_objects_say_where_they_live() -> None:
    for name in agentproc.__all__:
        obj = getattr(agentproc, name)
        if callable(obj):
            assert obj.__module__.startswith("agentproc"), name
            assert obj.__doc__, f"{name} has no docstring"


def test_version_matches_the_package_metadata() -> None:
    assert agentproc.__version__ == "0.1.0"
    assert agentproc.__version__ == version("agentproc")


BRIDGE_EXPECTED = [
    "Attachment",
    "BridgeError",
    "Busy",
    "ChannelError",
    "ConversationError",
    "ConversationKey",
    "Dispatcher",
    "ErrorReported",
    "Event",
    "LaunchError",
    "LaunchPlan",
    "MemoryStore",
    "Partial",
    "PermissionDecision",
    "PermissionRequest",
    "PermissionRequested",
    "ProcessExit",
    "Profile",
    "ProfileError",
    "ProfileNotFoundError",
    "Route",
    "SQLiteStore",
    "SessionCaptured",
    "SessionStore",
    "StateError",
    "Store",
    "StoreError",
    "Turn",
    "TurnError",
    "TurnHandle",
    "TurnRequest",
    "TurnResult",
    "TurnWarning",
    "UnknownRoute",
    "UsageError",
    "__version__",
    "build_plan",
    "load_profile",
    "open_store",
    "preflight",
    "run_plan",
    "run_request",
    "run_turn",
]


def test_bridge_all_is_pinned() -> None:
    import bridge

    assert sorted(bridge.__all__) == BRIDGE_EXPECTED
    assert len(set(bridge.__all__)) == len(bridge.__all__)


def test_every_bridge_export_resolves_to_its_home() -> None:
    """Each name is found lazily in the module ``bridge._HOMES`` names, and is
    defined there (not re-exported from somewhere else)."""
    import bridge

    assert set(bridge._HOMES) == set(bridge.__all__) - {"__version__"}
    for name in bridge.__all__:
        obj = getattr(bridge, name)
        assert obj is not None, name
        if callable(obj):
            assert obj.__module__ == bridge._HOMES[name], name
    with pytest.raises(AttributeError):
        bridge.no_such_name  # noqa: B018


def test_bridge_turn_still_exports_the_state_machine() -> None:
    """``from bridge.turn import TurnResult`` works as it did when
    ``bridge.turn`` was the state machine's module."""
    import bridge.turn
    import bridge.turn.machine

    for name in bridge.turn.__all__:
        assert getattr(bridge.turn, name) is getattr(bridge.turn.machine, name), name
    assert {"Turn", "TurnResult", "ProcessExit", "failed_result"} <= set(bridge.turn.__all__)
    with pytest.raises(AttributeError):
        bridge.turn.no_such_name  # noqa: B018
