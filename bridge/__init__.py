"""The agentproc bridge: loads profiles, runs turns, and connects chats to agents.

The library surface::

    from bridge import load_profile, run_turn
    profile = load_profile("profiles/echo")
    result = await run_turn(profile, "hello")

A :class:`TurnRequest` writes a turn's inputs down once (it is what the log
stores and what the HTTP API accepts); ``await run_request(profile, request)``
runs it.

One subpackage per layer; imports only point down this list:

1. :mod:`bridge.turn` — one turn: profiles, the launch plan, the state
   machine, the process layer, ``run_turn()``;
2. :mod:`bridge.store` — where conversations and their sessions live;
3. :mod:`bridge.conversations` — the dispatcher: which turn runs when;
4. :mod:`bridge.channels` — the terminal channel and batch runs;
5. :mod:`bridge.cli` — the ``agentproc`` command.

:mod:`bridge.errors` holds the root of every error, :class:`BridgeError`, and
draws the whole tree; each package's ``errors`` module holds its own branch.
"""

from typing import TYPE_CHECKING, Any

from agentproc import __version__

if TYPE_CHECKING:
    from agentproc.wire import Attachment, PermissionDecision, PermissionRequest
    from bridge.channels.errors import ChannelError, UsageError
    from bridge.conversations.dispatcher import Dispatcher, TurnHandle
    from bridge.conversations.errors import Busy, ConversationError, UnknownRoute
    from bridge.store.base import SessionStore, Store
    from bridge.store.errors import StateError, StoreError
    from bridge.store.memory import MemoryStore
    from bridge.store.records import ConversationKey, Route
    from bridge.store.sqlite import SQLiteStore, open_store
    from bridge.turn.errors import LaunchError, ProfileError, ProfileNotFoundError, TurnError
    from bridge.turn.launch import LaunchPlan, build_plan
    from bridge.turn.launch_check import preflight
    from bridge.turn.machine import (
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
    from bridge.turn.profile import Profile, load_profile
    from bridge.turn.request import TurnRequest
    from bridge.turn.runner import run_plan, run_request, run_turn

    from .errors import BridgeError

# Where each public name lives. Imported on first use, so that `import bridge`
# (and the CLI's --help) does not pay for pydantic and anyio up front.
_HOMES = {
    "Attachment": "agentproc.wire",
    "PermissionDecision": "agentproc.wire",
    "PermissionRequest": "agentproc.wire",
    "BridgeError": "bridge.errors",
    "TurnError": "bridge.turn.errors",
    "LaunchError": "bridge.turn.errors",
    "ProfileError": "bridge.turn.errors",
    "ProfileNotFoundError": "bridge.turn.errors",
    "StoreError": "bridge.store.errors",
    "StateError": "bridge.store.errors",
    "ConversationError": "bridge.conversations.errors",
    "Busy": "bridge.conversations.errors",
    "ChannelError": "bridge.channels.errors",
    "UsageError": "bridge.channels.errors",
    "LaunchPlan": "bridge.turn.launch",
    "build_plan": "bridge.turn.launch",
    "preflight": "bridge.turn.launch_check",
    "Profile": "bridge.turn.profile",
    "load_profile": "bridge.turn.profile",
    "TurnRequest": "bridge.turn.request",
    "run_plan": "bridge.turn.runner",
    "run_request": "bridge.turn.runner",
    "run_turn": "bridge.turn.runner",
    "ErrorReported": "bridge.turn.machine",
    "Event": "bridge.turn.machine",
    "Partial": "bridge.turn.machine",
    "PermissionRequested": "bridge.turn.machine",
    "ProcessExit": "bridge.turn.machine",
    "SessionCaptured": "bridge.turn.machine",
    "Turn": "bridge.turn.machine",
    "TurnResult": "bridge.turn.machine",
    "TurnWarning": "bridge.turn.machine",
    "Dispatcher": "bridge.conversations.dispatcher",
    "TurnHandle": "bridge.conversations.dispatcher",
    "UnknownRoute": "bridge.conversations.errors",
    "Store": "bridge.store.base",
    "Route": "bridge.store.records",
    "ConversationKey": "bridge.store.records",
    "SessionStore": "bridge.store.base",
    "MemoryStore": "bridge.store.memory",
    "SQLiteStore": "bridge.store.sqlite",
    "open_store": "bridge.store.sqlite",
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
