"""The agentproc bridge: loads profiles, runs turns, and connects chats to agents.

The library surface::

    from bridge import load_profile, run_turn
    profile = load_profile("bridge/profiles/echo")
    result = await run_turn(profile, "hello")
"""

from typing import TYPE_CHECKING, Any

from agentproc import __version__

if TYPE_CHECKING:
    from agentproc.wire import Attachment, PermissionDecision, PermissionRequest

    from .dispatch import Busy, Dispatcher, TurnHandle
    from .errors import BridgeError, LaunchError, ProfileError, ProfileNotFoundError, UsageError
    from .launch import LaunchPlan, build_plan, preflight
    from .profile import Profile, load_profile
    from .runner import run_plan, run_turn
    from .sessions import ConversationKey, MemoryStore, SessionStore
    from .store_sqlite import SQLiteStore, open_store
    from .turn import (
        ErrorReported,
        Event,
        Partial,
        PermissionRequested,
        ProcessExit,
        SessionCaptured,
        Turn,
        TurnResult,
        TurnWarning,
    )

# Where each public name lives. Imported on first use, so that `import bridge`
# (and the CLI's --help) does not pay for pydantic and anyio up front.
_HOMES = {
    "Attachment": "agentproc.wire",
    "PermissionDecision": "agentproc.wire",
    "PermissionRequest": "agentproc.wire",
    "BridgeError": "bridge.errors",
    "LaunchError": "bridge.errors",
    "ProfileError": "bridge.errors",
    "ProfileNotFoundError": "bridge.errors",
    "UsageError": "bridge.errors",
    "LaunchPlan": "bridge.launch",
    "build_plan": "bridge.launch",
    "preflight": "bridge.launch",
    "Profile": "bridge.profile",
    "load_profile": "bridge.profile",
    "run_plan": "bridge.runner",
    "run_turn": "bridge.runner",
    "ErrorReported": "bridge.turn",
    "Event": "bridge.turn",
    "Partial": "bridge.turn",
    "PermissionRequested": "bridge.turn",
    "ProcessExit": "bridge.turn",
    "SessionCaptured": "bridge.turn",
    "Turn": "bridge.turn",
    "TurnResult": "bridge.turn",
    "TurnWarning": "bridge.turn",
    "Dispatcher": "bridge.dispatch",
    "Busy": "bridge.dispatch",
    "TurnHandle": "bridge.dispatch",
    "ConversationKey": "bridge.sessions",
    "SessionStore": "bridge.sessions",
    "MemoryStore": "bridge.sessions",
    "SQLiteStore": "bridge.store_sqlite",
    "open_store": "bridge.store_sqlite",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bridge' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "Attachment",
    "BridgeError",
    "Busy",
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
    "SQLiteStore",
    "SessionCaptured",
    "SessionStore",
    "Turn",
    "TurnHandle",
    "TurnResult",
    "TurnWarning",
    "UsageError",
    "__version__",
    "build_plan",
    "load_profile",
    "open_store",
    "preflight",
    "run_plan",
    "run_turn",
]
