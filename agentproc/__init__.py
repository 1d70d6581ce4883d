"""agentproc: put any agent program behind a chat.

This package is the agent side: :func:`create_profile` turns a handler into an
agent, :class:`Context` is the turn it receives, and the history helpers keep a
conversation on disk. The protocol itself lives in :mod:`agentproc.wire`.

Importing it is cheap on purpose: a Python agent is started for every turn.
"""

from agentproc._sdk import Agent, AgentResult, Context, Invocation, ProtocolError, create_profile
from agentproc.history import HistoryEntry, append_history, load_history, session_file_path
from agentproc.wire import Attachment, PermissionDecision

__version__ = "0.1.0"

__all__ = [
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
