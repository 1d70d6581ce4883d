"""Pin the public surface of ``agentproc``: adding or removing a name is a decision."""

from __future__ import annotations

from importlib.metadata import version

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


def test_every_bridge_export_resolves() -> None:
    import bridge

    assert sorted(bridge.__all__) == sorted(set(bridge.__all__))
    for name in bridge.__all__:
        assert getattr(bridge, name) is not None, name
