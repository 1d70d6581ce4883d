"""A chat platform for tests of the bridge's channel layer: it keeps the
messages as a person would see them (text after edits, buttons, deleted
ones gone) and every call the bridge made, and can refuse calls the way
platforms do. The real platforms' tests use fakes of their own wire."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from bridge.channels.errors import NotModified, RateLimited
from bridge.channels.platform import Button, Capabilities, Inbox, Platform
from bridge.turn.profile import Profile

#: An agent that asks to use Bash, then says what it was answered.
ASKER = Profile(
    command=sys.executable,
    args=[str(Path(__file__).parent / "agents" / "permission_asker.py")],
    env={"ASK_TOOLS": "Bash"},
    permission=True,
    timeout_secs=20,
)


class Recorder(Platform):
    name = "chat"

    def __init__(self, capabilities: Capabilities | None = None) -> None:
        self.capabilities = capabilities or Capabilities(max_text=4096)
        #: Messages shown now, by id: (thread, text, buttons).
        self.shown: dict[str, tuple[str, str, tuple[Button, ...]]] = {}
        self.calls: list[tuple[str, str, str]] = []  # (method, thread, text)
        self.rate_limits: list[float] = []  # retry_after answers to give, in turn
        self._next = 0

    @property
    def posts(self) -> list[tuple[str, str]]:
        """(thread, text) of every post, in order."""
        return [(t, x) for m, t, x in self.calls if m == "post"]

    def said(self) -> str:
        return self.posts[-1][1] if self.posts else ""

    def texts(self, thread: str) -> list[str]:
        """What the thread shows now, oldest first."""
        return [text for t, text, _ in self.shown.values() if t == thread]

    async def run(self, inbox: Inbox) -> None:  # pragma: no cover - tests drive the inbox
        await anyio.sleep_forever()

    def _limited(self) -> None:
        if self.rate_limits:
            raise RateLimited("too many requests", retry_after=self.rate_limits.pop(0))

    async def post(self, thread: str, text: str, *, buttons: tuple[Button, ...] = ()) -> str:
        self._limited()
        self.calls.append(("post", thread, text))
        self._next += 1
        self.shown[str(self._next)] = (thread, text, buttons)
        return str(self._next)

    async def edit(
        self, thread: str, message_id: str, text: str, *, buttons: tuple[Button, ...] = ()
    ) -> None:
        self._limited()
        self.calls.append(("edit", thread, text))
        if self.shown[message_id][1:] == (text, buttons):
            raise NotModified("message is not modified")
        self.shown[message_id] = (thread, text, buttons)

    async def delete(self, thread: str, message_id: str) -> None:
        self.calls.append(("delete", thread, message_id))
        self.shown.pop(message_id, None)

    async def send_file(self, thread: str, path: Path, *, caption: str = "") -> str:
        self._limited()
        self.calls.append(("file", thread, f"{path.name}: {path.read_text()} ({caption})"))
        self._next += 1
        self.shown[str(self._next)] = (thread, f"[file {path.name}] {caption}", ())
        return str(self._next)
