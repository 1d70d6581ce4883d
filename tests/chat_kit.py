"""A chat platform for tests of the bridge's channel layer: it keeps the
messages as a person would see them (text after edits, buttons, deleted
ones gone) and every call the bridge made, and can refuse calls the way
platforms do. The real platforms' tests use fakes of their own wire."""

from __future__ import annotations

import sys
from pathlib import Path

from bridge.channels.testing import MemoryChat
from bridge.turn.profile import Profile

#: An agent that asks to use Bash, then says what it was answered.
ASKER = Profile(
    command=sys.executable,
    args=[str(Path(__file__).parent / "agents" / "permission_asker.py")],
    env={"ASK_TOOLS": "Bash"},
    permission=True,
    timeout_secs=20,
)


class Recorder(MemoryChat):
    """bridge.channels.testing's in-memory platform, as the channel "chat"."""

    name = "chat"
