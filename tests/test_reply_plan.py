"""The streamed-reply plan's splitter (bridge.channels.reply_split): a table
of cuts and hypothesis properties of any text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.channels.reply_split import MIN_LENGTH, measure, split_reply

# --- an independent reading of fences, for the checks ---------------------------------

OPENING_LINE = re.compile(r" {0,3}(`{3,})[^`\n]*\n")
CLOSER = re.compile(r"\n?(`{3,})")


def ends_inside_fence(text: str) -> bool:
    """CommonMark's backtick fences, read line by line (written apart from the module's)."""
    ticks = 0
    for line in text.split("\n"):
        body = line.lstrip(" ")
        if len(line) - len(body) > 3:  # indented code, never a fence line
            continue
        run = len(body) - len(body.lstrip("`"))
        if not ticks:
            if run >= 3 and "`" not in body[run:]:
                ticks = run
        elif run >= ticks and not body[run:].strip(" \t\r"):
            ticks = 0
    return ticks > 0


# --- the splitter ---------------------------------------------------------------------

L = 40  # a small max_length keeps the tables readable


def cut(text: str, max_length: int = L, utf16: bool = False) -> list[str]:
    return [c.text for c in split_reply(text, max_length, utf16=utf16)]


SPLITS = [
    pytest.param("short text", ["short text"], id="fits"),
    pytest.param("", [], id="empty"),
    pytest.param(
        "one two three four five six.\n\nseven eight nine ten",
        ["one two three four five six.\n\n", "seven eight nine ten"],
        id="paragraph",
    ),
    pytest.param(
        "a.\n\nb bb bbb bbbb bbbbb bbbbbb bbb\nc cc ccc",
        ["a.\n\nb bb bbb bbbb bbbbb bbbbbb bbb\n", "c cc ccc"],
        id="line-when-the-paragraph-is-early",
    ),
    pytest.param(
        "first line is long enough\nsecond line is long too",
        ["first line is long enough\n", "second line is long too"],
        id="line",
    ),
    pytest.param(
        "word " * 10,
        ["word word word word word word word word ", "word word "],
        id="space",
    ),
    pytest.param("x" * 90, ["x" * 40, "x" * 40, "x" * 10], id="hard"),
    pytest.param(
        "ok " + "u" * 38,
        ["ok ", "u" * 38],
        id="a-long-word-moves-whole",
    ),
    pytest.param(
        "intro\n```python\n" + "".join(f"print({i})\n" for i in range(5)) + "```\nbye",
        [
            "intro\n```python\nprint(0)\nprint(1)\n```",
            "```python\nprint(2)\nprint(3)\n```",
            "```python\nprint(4)\n```\nbye",
        ],
        id="fence-with-info-string",
    ),
    pytest.param(
        "```\n" + "line\n" * 20 + "```",
        ["```\n" + "line\n" * 6 + "```"] * 3 + ["```\nline\nline\n```"],
        id="fence-longer-than-a-message",
    ),
    pytest.param(
        "````md\n```\ninner\n```\n" + "z\n" * 10 + "````",
        ["````md\n```\ninner\n```\n" + "z\n" * 7 + "````", "````md\nz\nz\nz\n````"],
        id="four-backticks-hold-three",
    ),
    pytest.param(
        "```a-very-long-info-string-here\n" + "c\n" * 12 + "```",
        ["```a-very-long-info-string-here\nc\nc\n```", "```\n" + "c\n" * 10 + "```"],
        id="long-info-string-reopens-bare",
    ),
    pytest.param("```sh\nls", ["```sh\nls\n```"], id="open-fence-at-the-end-is-closed"),
    pytest.param("x" * 40 + "\n", ["x" * 40, "\n"], id="blank-chunk"),
]


@pytest.mark.parametrize(("text", "expected"), SPLITS)
def test_where_the_splitter_cuts(text: str, expected: list[str]) -> None:
    assert cut(text) == expected


def test_a_blank_chunk_is_marked() -> None:
    chunks = split_reply("x" * 40 + "\n\n", L)
    assert [c.blank for c in chunks] == [False, True]


def test_utf16_counts_astral_characters_twice() -> None:
    text = "😀" * 30
    assert measure(text) == 30 and measure(text, utf16=True) == 60
    assert cut(text) == [text]
    assert cut(text, utf16=True) == ["😀" * 20, "😀" * 10]


def test_a_fence_marker_too_long_to_reopen_is_still_balanced() -> None:
    text = "`" * 12 + "\n" + "code\n" * 10 + "`" * 12
    chunks = split_reply(text, MIN_LENGTH)
    assert chunks[1].opener == ""  # 13 characters do not fit in a quarter of 32
    for chunk in chunks:
        assert measure(chunk.text) <= MIN_LENGTH and not ends_inside_fence(chunk.text)
    assert "".join(c.body for c in chunks) == text


def test_too_small_a_length_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        split_reply("x", MIN_LENGTH - 1)


# Text with the things cuts care about: words, spaces, line breaks, blank
# lines, fences with and without info strings, backticks, astral characters.
PIECES = [
    "word",
    " ",
    "\n",
    "\n\n",
    "```",
    "```python\n",
    "\n```\n",
    "````\n",
    "`",
    "  ",
    "x" * 25,
    "é",
    "😀",
    "\t",
]
texts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=120).map("".join)
lengths = st.sampled_from([MIN_LENGTH, 33, 40, 57, 100, 200])


@settings(max_examples=600, deadline=None)
@given(texts, lengths, st.booleans())
def test_every_chunk_fits_is_balanced_and_the_bodies_give_back_the_text(
    text: str, max_length: int, utf16: bool
) -> None:
    chunks = split_reply(text, max_length, utf16=utf16)
    assert "".join(c.body for c in chunks) == text
    for chunk in chunks:
        assert chunk.body
        assert measure(chunk.text, utf16) <= max_length
        assert not ends_inside_fence(chunk.text), chunk
        assert not chunk.opener or OPENING_LINE.fullmatch(chunk.opener)
        assert not chunk.closer or CLOSER.fullmatch(chunk.closer)


@settings(max_examples=400, deadline=None)
@given(texts, texts, lengths)
def test_chunks_that_filled_up_stay_as_the_text_grows(
    text: str, more: str, max_length: int
) -> None:
    before = split_reply(text, max_length)
    after = split_reply(text + more, max_length)
    settled = before[:-2]
    assert after[: len(settled)] == settled


def test_a_closing_backtick_can_join_the_last_two_chunks_again() -> None:
    # Why "all but the last two": a backtick that closes a fence shortens the
    # closer more than it lengthens the text, so two chunks become one again.
    text = "```\n" + "a" * 22 + "\n``"
    assert len(split_reply(text, MIN_LENGTH)) == 2
    assert cut(text + "`", MIN_LENGTH) == [text + "`"]
