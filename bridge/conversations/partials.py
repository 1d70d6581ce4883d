"""Streamed text into the log: coalesced, so the log grows with text, not lines.

Every chunk an agent streams goes to the hub at once (live readers see it
within the same event-loop tick) and into a buffer; the buffer is written as
one ``turn.partial`` event at most every ``interval`` seconds, or as soon as
it holds ``max_chars`` characters, and always before any other event of the
turn (a permission request, the completion), so the log keeps the order in
which things happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from bridge.store.records import Event

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_MAX_CHARS", "PartialWriter"]

#: How long streamed text may wait in memory before it is written.
DEFAULT_INTERVAL = 0.05
#: How much streamed text is written at once at most (about 4 KB).
DEFAULT_MAX_CHARS = 4096

Write = Callable[[str, int], Awaitable[Event]]


class PartialWriter:
    """Buffers one turn's streamed text and writes it with ``write(text, offset)``.

    Run :meth:`run` in a task for the turn's life; call :meth:`add` from the
    partial callback (plain, no await); call :meth:`flush` before writing any
    other event of the turn, and :meth:`close` at its end.
    """

    def __init__(
        self,
        write: Write,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        self._write = write
        self._interval = interval
        self._max = max_chars
        self._buffer: list[str] = []
        self._size = 0
        self._offset = 0  # characters of the turn's text already written
        self._lock = anyio.Lock()
        self._wake = anyio.Event()
        self._woken = False
        self._full = anyio.Event()
        self._closed = False

    def add(self, text: str) -> None:
        if not text:
            return
        self._buffer.append(text)
        self._size += len(text)
        if not self._woken:  # one set() per flush, not one per chunk
            self._woken = True
            self._wake.set()
        if self._size >= self._max:
            self._full.set()

    async def flush(self) -> None:
        async with self._lock:
            if not self._buffer:
                return
            text = "".join(self._buffer)
            self._buffer.clear()
            self._size = 0
            self._full = anyio.Event()
            offset = self._offset
            self._offset += len(text)
            await self._write(text, offset)

    async def run(self) -> None:
        """Write the buffer every ``interval`` (sooner when it is full)."""
        while not self._closed:
            await self._wake.wait()
            self._wake = anyio.Event()
            self._woken = False
            with anyio.move_on_after(self._interval):
                await self._full.wait()
            await self.flush()

    async def close(self) -> None:
        """Write what is left; :meth:`run` then returns."""
        self._closed = True
        self._woken = True
        self._wake.set()
        await self.flush()
