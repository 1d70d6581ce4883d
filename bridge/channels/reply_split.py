"""Cutting a reply into messages a platform accepts: text in, chunks out.

:func:`split_reply` cuts a text into :class:`Chunk` s, each of which fits in
one message of ``max_length`` (measured by :func:`measure`). It is what
:mod:`bridge.channels.reply_plan` lays a streamed reply out with, and it is
a pure function: the same text always gives the same chunks.

Where a cut goes. A chunk that is not the last is cut at the best place in
its window (the text that would fit), in this order of preference:

1. after a blank line (a paragraph boundary) in the last half of the window;
2. after a line break in the last half;
3. after a space or tab in the last half;
4. after a line break, then after a space, anywhere in the window (a long
   word or URL then moves whole into the next message if it fits there);
5. hard, at the end of the window.

Whitespace at a cut stays with the earlier chunk, so the next one starts
with text. Except for a hard cut (case 5), a cut never falls inside a line
that starts like a code fence (so a fence line is never torn apart), nor
just before text that would look like one at the top of the next message;
and a cut at a line break is not taken where it would leave an empty code
block (just after a fence's opening line, or just before a line that may
close it).

Code fences. Fences are read the way CommonMark reads backtick fences,
line by line: an opening line is up to three spaces, three or more
backticks, and an info string without backticks (```` ```python ````); it is
closed by a line of up to three spaces and at least as many backticks, with
nothing but whitespace after. Tilde fences are plain text here: none of
Telegram, Slack or Discord renders them. When a cut falls inside a fence:

* the chunk gets a :attr:`~Chunk.closer` (a line of as many backticks,
  after a line break unless the chunk already ends with one);
* the next chunk gets an :attr:`~Chunk.opener`: the fence's opening line as
  written (indent, backticks, info string), so ```` ```python ```` stays
  ```` ```python ````. An opening line longer than a quarter of
  ``max_length`` is reopened without its info string, and one whose
  backticks alone are that long is not reopened at all (such a chunk is
  still balanced, see below, but the code shows as text).

Every chunk is balanced on its own: the closer is worked out from the
chunk's own text (opener and body), read with the rules above, so it holds
even where a hard cut tears a line; a text that ends inside a fence (a reply
still streaming its code block, or one that forgot to close it) gets a
closer on its last chunk too. Removing the openers and closers gives back
the text exactly: ``"".join(c.body for c in chunks) == text``.

Blank chunks. A chunk whose body is only whitespace (a run of blank lines
that lands past a full message, a trailing newline just past the limit)
has nothing to show, and platforms refuse empty messages: it is marked
:attr:`~Chunk.blank` and the reply plan does not post it.

Stability. Cutting a longer text made by appending to a shorter one gives
the same chunks as before, but for the last two; so while a reply streams
in, messages that filled up are left alone. (The exceptions need a hard
cut torn through a line that starts with backticks.)

Length is counted in code points, or with ``utf16=True`` in UTF-16 code
units (a character beyond U+FFFF counts two): the count to use where a
platform measures text that way, or is not known not to.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate

__all__ = ["MIN_LENGTH", "Chunk", "measure", "split_reply"]

#: The smallest ``max_length`` accepted. A reopened fence (up to a quarter of
#: the length) and its closer must leave room for text in every chunk, and
#: no platform we know allows less than 2,000 characters.
MIN_LENGTH = 32

_OPENING = re.compile(r" {0,3}(`{3,})[^`\n]*")
_CLOSING = re.compile(r" {0,3}(`{3,})[ \t\r]*")
#: What a line that may be a fence line starts with (known from its first
#: characters, before the rest of it has streamed in).
_FENCE_LIKE = re.compile(r" {0,3}```")

_PARAGRAPH, _LINE, _SPACE = "paragraph", "line", "space"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One message's worth of a reply: ``opener + body + closer``.

    ``body`` is the reply's own text; ``opener`` (a fence reopened at the
    top, with its line break) and ``closer`` (a fence closed at the bottom)
    are added by the cut, and are empty when the cut is outside a fence.
    """

    opener: str
    body: str
    closer: str
    #: Where ``body`` starts in the text that was split, and the fence open
    #: there: what :func:`split_reply` needs to cut again from this chunk on.
    start: int = field(default=0, compare=False)
    fence: _Fence | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        """What the message holds."""
        return self.opener + self.body + self.closer

    @property
    def blank(self) -> bool:
        """The body is only whitespace: nothing to show, never posted."""
        return not self.body.strip()


def measure(text: str, utf16: bool = False) -> int:
    """The length of ``text``: code points, or UTF-16 code units if ``utf16``."""
    if not utf16 or text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class _Fence:
    """An open fence: how many backticks close it, and its opening line."""

    ticks: int
    line: str


def _step(state: _Fence | None, line: str) -> _Fence | None:
    """The fence state after one line (without its line break)."""
    if state is None:
        opening = _OPENING.fullmatch(line)
        return _Fence(len(opening.group(1)), line) if opening else None
    closing = _CLOSING.fullmatch(line)
    return None if closing and len(closing.group(1)) >= state.ticks else state


def _open_fence(text: str) -> _Fence | None:
    """The fence ``text`` ends inside (its last line read as a whole line), or None."""
    state: _Fence | None = None
    for line in text.split("\n"):
        state = _step(state, line)
    return state


def _closer(message: str) -> str:
    """What closes the fence ``message`` ends inside ("" when it ends outside)."""
    fence = _open_fence(message)
    if fence is None:
        return ""
    return ("" if message.endswith("\n") else "\n") + "`" * fence.ticks


def _reopener(fence: _Fence | None, max_length: int, utf16: bool) -> str:
    """The line that reopens ``fence`` at the top of the next chunk (see the module doc)."""
    if fence is None:
        return ""
    room = max_length // 4
    line = fence.line + "\n"
    if measure(line, utf16) <= room:
        return line
    bare = fence.line[: fence.line.index("`") + fence.ticks] + "\n"
    return bare if len(bare) <= room else ""


class _Text:
    """A text read once: where its lines start, the fence state at each, lengths."""

    def __init__(self, text: str, utf16: bool, state: _Fence | None = None) -> None:
        self.text = text
        self.starts = [0]
        self.states: list[_Fence | None] = [state]
        pos = 0
        while (end := text.find("\n", pos)) >= 0:
            state = _step(state, text[pos:end])
            pos = end + 1
            self.starts.append(pos)
            self.states.append(state)
        # UTF-16 units before each index (None: one unit per code point,
        # also where no character is beyond U+FFFF).
        self.units = (
            [0, *accumulate(2 if ord(ch) > 0xFFFF else 1 for ch in text)]
            if utf16 and measure(text, utf16) != len(text)
            else None
        )

    def line_start(self, p: int) -> int:
        return self.starts[bisect_right(self.starts, p) - 1]

    def state_at(self, p: int) -> _Fence | None:
        """The fence state where the line holding ``p`` starts."""
        return self.states[bisect_right(self.starts, p) - 1]

    def fit(self, start: int, room: int) -> int:
        """The furthest end after ``start`` whose text takes at most ``room``
        (at least one character, so a cut always moves on)."""
        if self.units is None:
            end = start + room
        else:
            end = bisect_right(self.units, self.units[start] + room) - 1
        return min(len(self.text), max(end, start + 1))

    def _mid_line_ok(self, p: int) -> bool:
        """A cut at ``p`` inside a line neither tears a fence-like line nor
        leaves fence-like text at the top of the next chunk."""
        return not (
            _FENCE_LIKE.match(self.text, self.line_start(p)) or _FENCE_LIKE.match(self.text, p)
        )

    def _empty_block_at(self, index: int) -> bool:
        """A cut before line ``index`` would leave an empty code block: the
        line before opened a fence, or this line may close one."""
        fence = self.states[index]
        if fence is None:
            return False
        return self.states[index - 1] is None or bool(
            _FENCE_LIKE.match(self.text, self.starts[index])
        )

    def _blank_line_before(self, index: int) -> bool:
        """The line before line ``index`` is blank (so its start is a paragraph start)."""
        return index > 0 and not self.text[self.starts[index - 1] : self.starts[index]].strip()

    def candidates(self, low: int, high: int) -> dict[str, int]:
        """The last cut of each kind in ``(low, high]``."""
        found: dict[str, int] = {}
        first = bisect_left(self.starts, low + 1)
        last = bisect_right(self.starts, high) - 1
        for index in range(last, first - 1, -1):
            if self._empty_block_at(index):
                continue
            found.setdefault(_LINE, self.starts[index])
            if self._blank_line_before(index):
                found[_PARAGRAPH] = self.starts[index]
                break
        for p in range(high, low, -1):
            if self.text[p - 1] in " \t" and self._mid_line_ok(p):
                found[_SPACE] = p
                break
        return found

    def cut(self, start: int, end: int) -> int:
        """Where to cut a chunk that starts at ``start`` and may run to ``end``."""
        middle = start + (end - start) // 2
        near = self.candidates(middle, end)
        for kind in (_PARAGRAPH, _LINE, _SPACE):
            if kind in near:
                return near[kind]
        far = self.candidates(start, middle)
        for kind in (_LINE, _SPACE):
            if kind in far:
                return far[kind]
        return end


def split_reply(
    text: str, max_length: int, *, utf16: bool = False, after: Sequence[Chunk] = ()
) -> list[Chunk]:
    """Cut ``text`` into chunks of at most ``max_length`` each, fences balanced
    in every one (see the module docstring for where cuts go).

    ``after`` are the chunks of an earlier split (same ``max_length`` and
    ``utf16``) of a text that ``text`` begins with: as a text grows, all but
    its last two chunks stay as they were, so those are kept and only the
    rest is cut again. A streamed reply so costs the text that came since,
    not the whole text, each time it grows.
    """
    if max_length < MIN_LENGTH:
        raise ValueError(f"max_length must be at least {MIN_LENGTH}, not {max_length}")
    kept: list[Chunk] = []
    if len(after) > 2:
        last = after[-1]
        if last.start + len(last.body) <= len(text):
            kept = list(after[:-2])
    # Cut again from the first chunk not kept, reading the text from the
    # start of its line (so lines, and the fence state at each, are read as
    # a whole split reads them).
    offset = start = 0
    fence_there: _Fence | None = None
    if kept:
        resume = after[len(kept)]
        offset = text.rfind("\n", 0, resume.start) + 1
        start = resume.start - offset
        fence_there = resume.fence
    text = text[offset:] if offset else text
    doc = _Text(text, utf16, fence_there)
    chunks = kept
    while start < len(text):
        fence = doc.state_at(start)
        opener = _reopener(fence, max_length, utf16)
        rest = text[start:]
        closer = _closer(opener + rest)
        if measure(opener + rest, utf16) + measure(closer, utf16) <= max_length:
            chunks.append(Chunk(opener, rest, closer, offset + start, fence))
            break
        room = max_length - measure(opener, utf16)
        reserve = 0
        while True:
            end = doc.cut(start, doc.fit(start, max(1, room - reserve)))
            body = text[start:end]
            closer = _closer(opener + body)
            if measure(opener + body, utf16) + measure(closer, utf16) <= max_length:
                break
            reserve = max(reserve + 1, measure(closer, utf16))
        chunks.append(Chunk(opener, body, closer, offset + start, fence))
        start = end
    return chunks
