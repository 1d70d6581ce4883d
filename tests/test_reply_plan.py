"""The streamed-reply plan (bridge.channels.reply_plan) and its splitter
(bridge.channels.reply_split): tables for the cuts and each rule, and
hypothesis runs of whole replies against a fake platform on a fake clock.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bridge.channels.reply_plan import (
    BLANK,
    DISCORD,
    SLACK,
    TELEGRAM,
    Action,
    Budget,
    Delete,
    Done,
    Draft,
    Edit,
    Failed,
    GiveUp,
    Limits,
    MessageId,
    NotModified,
    Ok,
    Post,
    Posted,
    RateLimited,
    ReplyPlan,
    Result,
    Wait,
)
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


def reassemble(messages: list[str], final: str, limits: Limits) -> str:
    """The final text as the messages hold it, the fence lines the cuts added
    taken off (each checked to be just that), blank chunks (never posted) put back."""
    delivered = iter(messages)
    out = []
    for chunk in split_reply(final, limits.max_length, utf16=limits.utf16):
        if chunk.blank:
            assert not chunk.body.strip()
            out.append(chunk.body)
            continue
        message = next(delivered)
        assert message.startswith(chunk.opener) and message.endswith(chunk.closer)
        assert not chunk.opener or OPENING_LINE.fullmatch(chunk.opener)
        assert not chunk.closer or CLOSER.fullmatch(chunk.closer)
        out.append(message[len(chunk.opener) : len(message) - len(chunk.closer)])
    assert next(delivered, None) is None, "more messages than the final text needs"
    return "".join(out)


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


@settings(max_examples=1500, deadline=None)
@given(texts, st.lists(texts, min_size=1, max_size=5), lengths, st.booleans())
@example("```" + "x" * 25 + "wordword " + "x" * 25, [""], MIN_LENGTH, False)  # starts mid-line
def test_cutting_only_what_grew_gives_the_whole_cut(
    text: str, growth: list[str], max_length: int, utf16: bool
) -> None:
    chunks = split_reply(text, max_length, utf16=utf16)
    for more in growth:
        text += more
        chunks = split_reply(text, max_length, utf16=utf16, after=chunks)
    whole = split_reply(text, max_length, utf16=utf16)
    assert chunks == whole
    assert [c.start for c in chunks] == [c.start for c in whole]


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


# --- the budget -----------------------------------------------------------------------


def test_a_budget_allows_a_burst_then_its_rate() -> None:
    budget = Budget(rate=2, burst=3)
    for _ in range(3):
        assert budget.ready_at(10.0) == 10.0
        budget.take(10.0)
    assert budget.ready_at(10.0) == pytest.approx(10.5)
    with pytest.raises(ValueError, match="no send may go"):
        budget.take(10.2)
    budget.take(10.5)
    assert budget.ready_at(10.5) == pytest.approx(11.0)
    assert budget.ready_at(100.0) == 100.0  # refilled, never beyond the burst


def test_a_budget_held_by_a_retry_after() -> None:
    budget = Budget.interval(1.0)
    budget.hold(7.0)
    assert budget.ready_at(3.0) == 7.0
    budget.take(7.0)
    assert budget.ready_at(7.0) == pytest.approx(8.0)


def test_a_budget_treats_an_earlier_now_as_the_latest_seen() -> None:
    budget = Budget.interval(2.0)
    budget.take(5.0)
    assert budget.ready_at(4.0) == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("rate", "burst"), [(0, 1), (-1, 1), (math.inf, 1), (1, 0.5), (1, math.inf)]
)
def test_bad_budgets_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        Budget(rate, burst)


@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [
        ("max_length", 10, "at least 32"),
        ("edit_interval", -1, "edit_interval"),
        ("send_interval", math.inf, "send_interval"),
        ("backoff", math.nan, "backoff"),
        ("max_backoff", 0.5, "max_backoff"),
        ("max_attempts", 0, "max_attempts"),
    ],
)
def test_bad_limits_are_refused(field_name: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(DISCORD, **{field_name: value})  # type: ignore[arg-type]


def test_the_platform_presets() -> None:
    assert (TELEGRAM.max_length, TELEGRAM.utf16) == (4096, True)
    assert SLACK.max_length == 4000 and DISCORD.max_length == 2000


# --- the plan, rule by rule -----------------------------------------------------------

LIM = Limits(
    max_length=40,
    edit_interval=1.0,
    send_interval=0.5,
    first_chars=10,
    first_delay=1.0,
    max_attempts=3,
    backoff=1.0,
)
LONG = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda"


def posted(plan: ReplyPlan, now: float, message_id: int) -> Post:
    """Poll, expect a post, answer it with ``message_id``."""
    step = plan.poll(now)
    assert isinstance(step, Post), step
    plan.report(Ok(message_id), now)
    return step


def answered(plan: ReplyPlan, now: float, result: Result | None = None) -> Action:
    """Poll, expect an action, answer it (Ok by default)."""
    step = plan.poll(now)
    assert isinstance(step, Post | Edit | Draft | Delete), step
    plan.report(result or Ok(), now)
    return step


def test_the_first_message_waits_for_enough_text_or_a_short_delay() -> None:
    plan = ReplyPlan(LIM)
    assert plan.poll(0.0) == Wait(None)
    plan.stream("Hi", 0.2)
    assert plan.poll(0.2) == Wait(1.2)
    plan.stream("Hi th", 0.5)
    assert plan.poll(0.5) == Wait(1.2)
    plan.stream("Hi there, you", 0.7)  # enough text: at once
    assert plan.poll(0.7) == Post(0, "Hi there, you")


def test_a_short_reply_goes_after_the_delay() -> None:
    plan = ReplyPlan(LIM)
    plan.stream("Hi", 3.0)
    assert plan.poll(4.0) == Post(0, "Hi")


def test_edits_are_spaced_and_send_the_latest_text() -> None:
    plan = ReplyPlan(LIM)
    plan.stream("Hello there", 0.0)
    posted(plan, 0.0, 7)
    plan.stream("Hello there, how", 0.3)
    assert plan.poll(0.3) == Wait(0.5), "the chat's budget: the new text is looked at then"
    assert plan.poll(0.5) == Wait(1.0), "one edit a second"
    plan.stream("Hello there, how are", 0.6)
    plan.stream("Hello there, how are you", 0.9)
    assert plan.poll(1.0) == Edit(0, 7, "Hello there, how are you")
    plan.report(Ok(), 1.1)
    plan.stream("Hello there, how are you", 1.5)  # nothing new
    assert plan.poll(2.5) == Wait(None)
    assert plan.messages == (Posted(7, "Hello there, how are you"),)


def test_a_full_message_gets_its_last_edit_and_the_reply_rolls_over() -> None:
    plan = ReplyPlan(LIM)
    plan.stream("alpha beta gamma delta", 0.0)
    posted(plan, 0.0, 1)
    plan.stream(LONG, 0.5)
    first, second = (c.text for c in split_reply(LONG, 40))
    assert plan.poll(1.0) == Edit(0, 1, first)
    plan.report(Ok(), 1.0)
    assert plan.poll(1.0) == Wait(1.5)  # the chat's send interval
    assert plan.poll(1.5) == Post(1, second)
    plan.report(Ok(2), 1.5)
    plan.finish(LONG, 2.0)
    assert plan.poll(2.0) == Done(complete=True)
    assert plan.messages == (Posted(1, first), Posted(2, second))


def test_the_final_text_replaces_the_preview_and_leftovers_are_deleted() -> None:
    plan = ReplyPlan(LIM)
    plan.stream(LONG, 0.0)
    posted(plan, 0.0, 1)
    posted(plan, 1.0, 2)
    plan.finish("Short answer.", 1.2)
    assert plan.poll(2.0) == Edit(0, 1, "Short answer.")
    plan.report(NotModified(), 2.0)  # as good as Ok
    assert plan.poll(2.5) == Delete(1, 2)
    plan.report(Ok(), 2.5)
    assert plan.poll(3.0) == Done(complete=True)
    assert plan.messages == (Posted(1, "Short answer."),)


def test_leftovers_are_blanked_where_messages_cannot_be_deleted() -> None:
    plan = ReplyPlan(replace(LIM, can_delete=False))
    plan.stream(LONG, 0.0)
    posted(plan, 0.0, 1)
    posted(plan, 1.0, 2)
    plan.finish("Short answer.", 1.2)
    answered(plan, 2.0)
    assert plan.poll(2.5) == Edit(1, 2, BLANK)


def test_a_longer_final_text_posts_more() -> None:
    plan = ReplyPlan(LIM)
    plan.stream("alpha beta gamma", 0.0)
    posted(plan, 0.0, 1)
    plan.finish(LONG, 0.1)
    first, second = (c.text for c in split_reply(LONG, 40))
    assert plan.poll(1.0) == Edit(0, 1, first)
    plan.report(Ok(), 1.0)
    assert plan.poll(1.5) == Post(1, second)


def test_the_final_text_waits_for_no_first_delay() -> None:
    plan = ReplyPlan(LIM)
    plan.stream("Hi", 0.0)
    plan.finish("Hi", 0.1)
    assert plan.poll(0.1) == Post(0, "Hi")


def test_a_rate_limit_holds_the_reply_then_sends_the_latest_text() -> None:
    chat = Budget.interval(0.5)
    plan = ReplyPlan(LIM, chat=chat)
    plan.stream("Hello there", 0.0)
    posted(plan, 0.0, 1)
    plan.stream("Hello there, more", 1.0)
    answered(plan, 1.0, RateLimited(retry_after=5.0))
    assert chat.ready_at(1.0) == 6.0  # the chat is held too
    plan.stream("Hello there, more and more", 2.0)
    plan.finish("Hello there, the end", 3.0)
    assert plan.poll(3.0) == Wait(6.0)
    now = 6.0
    for _ in range(20):  # a storm: the final text is never dropped
        assert plan.poll(now) == Edit(0, 1, "Hello there, the end")
        answer_at = now + 0.1
        plan.report(RateLimited(retry_after=30.0), answer_at)
        assert plan.poll(answer_at) == Wait(answer_at + 30.0)  # counted from the answer
        now = answer_at + 30.0
    assert answered(plan, now) == Edit(0, 1, "Hello there, the end")
    assert plan.poll(now) == Done(complete=True)


def test_a_failed_preview_is_retried_with_backoff_then_given_up() -> None:
    plan = ReplyPlan(LIM)
    plan.stream("Hello there", 0.0)
    posted(plan, 0.0, 1)
    plan.stream("Hello there, more", 1.0)
    edit = answered(plan, 1.0, Failed("boom"))
    assert plan.poll(1.0) == Wait(2.0)  # backoff 1 s
    assert answered(plan, 2.0, Failed("boom")) == edit
    assert plan.poll(2.0) == Wait(4.0)  # then 2 s
    assert answered(plan, 4.0, Failed("bang")) == edit
    assert plan.poll(4.0) == GiveUp(edit, 3, "bang")
    plan.stream("Hello there, more and more", 5.0)
    assert plan.poll(5.0) == Wait(None)  # the preview has stopped
    plan.finish("Hello there, final", 6.0)
    assert plan.poll(6.0) == Edit(0, 1, "Hello there, final")  # the final is attempted


def test_the_final_text_gets_fresh_attempts() -> None:
    plan = ReplyPlan(replace(LIM, max_attempts=2, backoff=0.0))
    plan.stream("Hello there", 0.0)
    posted(plan, 0.0, 1)
    plan.stream("Hello there, more", 1.0)
    answered(plan, 1.0, Failed("flaky"))  # one of two attempts, while streaming
    plan.finish("Hello there, the end", 1.5)
    answered(plan, 2.0, Failed("flaky"))  # the final's first
    assert plan.poll(3.0) == Edit(0, 1, "Hello there, the end")  # not a give-up


def test_a_final_post_that_keeps_failing_ends_the_reply_incomplete() -> None:
    plan = ReplyPlan(replace(LIM, max_attempts=2, backoff=0.0))
    plan.finish(LONG, 0.0)
    post = answered(plan, 0.0, Failed("403 blocked"))
    assert answered(plan, 1.0, Failed("403 blocked")) == post
    assert plan.poll(1.0) == GiveUp(post, 2, "403 blocked")
    assert plan.poll(1.0) == Done(complete=False)  # slot 1 is never posted before slot 0
    assert plan.done


def test_a_final_edit_that_keeps_failing_does_not_stop_the_others() -> None:
    plan = ReplyPlan(replace(LIM, max_attempts=1))
    plan.stream(LONG, 0.0)
    posted(plan, 0.0, 1)
    plan.finish("Changed. " + LONG, 0.5)
    edit = answered(plan, 1.0, Failed("gone"))
    assert plan.poll(1.0) == GiveUp(edit, 1, "gone")
    assert isinstance(plan.poll(1.5), Post)
    plan.report(Ok(2), 1.5)
    assert plan.poll(2.0) == Done(complete=False)


def test_an_action_out_when_the_final_comes_does_not_cost_the_final_its_tries() -> None:
    plan = ReplyPlan(replace(LIM, max_attempts=1, drafts=True))
    plan.stream("Hello there", 0.0)
    draft = plan.poll(0.0)
    assert draft == Draft(0, "Hello there")
    plan.finish("Hello there!", 0.1)
    plan.report(Failed("timeout"), 0.2)
    assert plan.poll(0.2) == GiveUp(draft, 1, "timeout")
    assert plan.poll(1.0) == Post(0, "Hello there!")


def test_drafts_preview_and_the_final_is_a_real_message() -> None:
    plan = ReplyPlan(replace(LIM, drafts=True))
    plan.stream("Hello there", 0.0)
    assert answered(plan, 0.0) == Draft(0, "Hello there")
    plan.stream("Hello there, you", 0.2)
    assert plan.poll(0.5) == Wait(1.0)
    assert answered(plan, 1.0) == Draft(0, "Hello there, you")
    plan.finish("Hello there, you!", 1.2)
    assert plan.poll(1.5) == Post(0, "Hello there, you!")
    plan.report(Ok(5), 1.5)
    assert plan.poll(1.5) == Done(complete=True)


def test_with_drafts_full_chunks_are_posted_and_the_tail_is_drafted() -> None:
    plan = ReplyPlan(replace(LIM, drafts=True))
    first, second = (c.text for c in split_reply(LONG, 40))
    plan.stream(LONG[:30], 0.0)
    assert answered(plan, 0.0) == Draft(0, LONG[:30])
    plan.stream(LONG, 1.0)
    assert plan.poll(1.0) == Post(0, first)
    plan.report(Ok(1), 1.0)
    assert plan.poll(1.5) == Draft(1, second)  # the post made the old draft vanish


def test_without_edits_nothing_is_posted_before_the_final_text() -> None:
    plan = ReplyPlan(replace(LIM, can_edit=False))
    plan.stream(LONG, 0.0)
    assert plan.poll(5.0) == Wait(None)
    plan.finish(LONG, 6.0)
    assert [posted(plan, 6.0, 1).slot, posted(plan, 7.0, 2).slot] == [0, 1]
    assert plan.poll(8.0) == Done(complete=True)


def test_without_edits_a_draft_shows_the_tail() -> None:
    plan = ReplyPlan(replace(LIM, can_edit=False, drafts=True))
    plan.stream(LONG, 0.0)
    assert plan.poll(0.0) == Draft(1, split_reply(LONG, 40)[1].text)


def test_a_resumed_plan_edits_what_was_posted_and_never_posts_it_again() -> None:
    first, second = (c.text for c in split_reply(LONG, 40))
    plan = ReplyPlan.resume(LIM, [(11, first), (12, second[:5])])
    plan.finish(LONG + " mu", 0.0)
    # The record may miss an edit that was out at the crash: each message is
    # written once more, and "not modified" is as good as Ok.
    assert answered(plan, 0.0, NotModified()) == Edit(0, 11, first)
    assert answered(plan, 0.5) == Edit(1, 12, split_reply(LONG + " mu", 40)[1].text)
    assert plan.poll(1.0) == Done(complete=True)


def test_a_failed_edit_may_have_gone_through_so_it_is_not_trusted() -> None:
    plan = ReplyPlan(replace(LIM, max_attempts=1))
    plan.stream("Hello there", 0.0)
    posted(plan, 0.0, 1)
    plan.stream("Hello there, and", 1.0)
    edit = answered(plan, 1.0, Failed("timeout"))  # it did reach the platform
    assert plan.poll(1.0) == GiveUp(edit, 1, "timeout")
    plan.finish("Hello there", 2.0)  # what the message held before the edit
    assert plan.poll(2.0) == Edit(0, 1, "Hello there")


def test_a_resumed_plan_on_a_platform_without_edits_gives_up_what_it_cannot_fix() -> None:
    plan = ReplyPlan.resume(replace(LIM, can_edit=False), [(11, "stale")])
    plan.finish("fresh", 0.0)
    assert plan.poll(0.0) == GiveUp(Edit(0, 11, "fresh"), 0, "the platform cannot edit messages")
    assert plan.poll(0.0) == Done(complete=False)
    plan = ReplyPlan.resume(replace(LIM, can_edit=False), [(11, "fresh")])
    plan.finish("fresh", 0.0)
    assert plan.poll(0.0) == Done(complete=True)  # nothing can have changed it


def test_a_blank_final_text_leaves_nothing_posted() -> None:
    plan = ReplyPlan(LIM)
    plan.stream("Hello there", 0.0)
    posted(plan, 0.0, 1)
    plan.finish("  \n", 0.5)
    assert answered(plan, 0.5) == Delete(0, 1)
    assert plan.poll(0.5) == Done(complete=True)
    assert plan.messages == ()


def test_plans_share_the_bot_wide_budget() -> None:
    budget = Budget(rate=1.0, burst=1.0)
    one, two = ReplyPlan(LIM, budget=budget), ReplyPlan(LIM, budget=budget)
    one.finish("from one", 0.0)
    two.finish("from two", 0.0)
    assert one.poll(0.0) == Post(0, "from one")
    assert two.poll(0.0) == Wait(1.0)
    assert two.poll(1.0) == Post(0, "from two")


def test_a_stray_partial_after_the_final_is_ignored() -> None:
    plan = ReplyPlan(LIM)
    plan.finish("The end.", 0.0)
    plan.stream("The end. And more", 0.1)
    assert plan.poll(0.1) == Post(0, "The end.")


def test_misuse_is_refused() -> None:
    plan = ReplyPlan(LIM)
    with pytest.raises(RuntimeError, match="no action out"):
        plan.report(Ok(), 0.0)
    plan.finish("text", 0.0)
    post = plan.poll(0.0)
    assert isinstance(post, Post)
    with pytest.raises(RuntimeError, match="report"):
        plan.poll(0.0)
    with pytest.raises(ValueError, match="names the new message"):
        plan.report(Ok(), 0.0)
    with pytest.raises(ValueError, match="names the new message"):
        plan.report(NotModified(), 0.0)
    plan.report(Ok(1), 0.0)
    assert plan.messages == (Posted(1, post.text),)


# --- whole replies against a fake platform on a fake clock ----------------------------


@dataclass
class FakeChat:
    """One chat on a fake platform. Each action takes the next scripted
    answer: ``ok``, ``rate`` (retry after the number), ``fail`` (nothing
    done), ``lost`` (done, but the answer lost: the worker sees a failure;
    never for a post, whose duplicate no plan can prevent)."""

    answers: Iterator[tuple[str, float]]
    ids: Iterator[int]
    messages: dict[MessageId, str] = field(default_factory=dict)  # id -> text, posting order
    drafts: dict[int, str] = field(default_factory=dict)

    def apply(self, action: Action) -> MessageId | None:
        """Do ``action``; a post's new message id."""
        if isinstance(action, Post):
            message_id = next(self.ids)
            self.messages[message_id] = action.text
            self.drafts.clear()
            return message_id
        if isinstance(action, Edit):
            assert action.message_id in self.messages, f"{action} of a message not there"
            self.messages[action.message_id] = action.text
        elif isinstance(action, Draft):
            self.drafts[action.slot] = action.text
        else:
            self.messages.pop(action.message_id, None)
        return None

    def answer(self, action: Action) -> Result:
        kind, retry_after = next(self.answers, ("ok", 0.0))
        if kind == "rate":
            return RateLimited(retry_after)
        if kind == "fail" or (kind == "lost" and isinstance(action, Post)):
            return Failed(kind)
        unchanged = isinstance(action, Edit) and self.messages.get(action.message_id) == action.text
        message_id = self.apply(action)
        if kind == "lost":
            return Failed(kind)
        return NotModified() if unchanged else Ok(message_id)


@dataclass
class Script:
    """One reply: its limits, the text as it streams in and its final text
    (``(time, text, final)``), the platform's answers, and how long each takes."""

    limits: Limits
    texts: list[tuple[float, str, bool]]
    answers: list[tuple[str, float]]
    latency: float


@dataclass
class Lane:
    """One reply's delivery worker, on a fake platform, keeping the record
    the checks read: every action with its time, rate-limit holds, give-ups."""

    script: Script
    sim: Simulation
    plan: ReplyPlan
    chat: FakeChat
    known: dict[int, Posted] = field(default_factory=dict)  # what the plan has been told
    unsure: set[int] = field(default_factory=set)  # messages a failed edit may have changed
    out: Action | None = None
    epoch: int = 0  # a crash makes answers still on their way stale
    wake: int = 0  # only the latest wake-up counts
    text: str = ""
    final: bool = False
    sent: list[tuple[float, Action]] = field(default_factory=list)
    holds: list[tuple[int, float]] = field(default_factory=list)  # (sends before, until)
    give_ups: list[GiveUp] = field(default_factory=list)
    done: Done | None = None
    first_post_slot: int = 0  # a resumed plan posts no slot below this
    # Crash once, at the given send: while it is out, or just after its answer.
    crash_at_send: int | None = None
    crash_while_out: bool = False
    edit_went_through: bool = False

    def feed(self, now: float, text: str, final: bool) -> None:
        if self.final:
            return
        self.text, self.final = text, final
        (self.plan.finish if final else self.plan.stream)(text, now)
        self.drive(now)

    def drive(self, now: float) -> None:
        while self.out is None and self.done is None:
            step = self.plan.poll(now)
            if isinstance(step, GiveUp):
                self.give_ups.append(step)
            elif isinstance(step, Done):
                self.done = step
            elif isinstance(step, Wait):
                if step.until is not None:
                    assert step.until > now, f"a wait that is already over: {step}"
                    self.wake += 1
                    self.sim.at(step.until, self.woken, self.wake)
                return
            else:
                self.check(step)
                self.sent.append((now, step))
                self.out = step
                if self.crash_while_out and self.crash_at_send == len(self.sent):
                    self.sim.at(now, self.crash)  # before the answer comes
                self.sim.at(now + self.script.latency, self.answered, self.epoch)

    def check(self, action: Action) -> None:
        limits = self.script.limits
        if isinstance(action, Post | Edit | Draft):
            assert measure(action.text, limits.utf16) <= limits.max_length, action
            assert not ends_inside_fence(action.text), action
        if isinstance(action, Post):
            assert action.slot == len(self.known) >= self.first_post_slot, action
        elif isinstance(action, Edit | Delete):
            assert self.known[action.slot].message_id == action.message_id, action
        if isinstance(action, Edit) and action.slot not in self.unsure:
            assert self.known[action.slot].text != action.text, (
                f"an edit that changes nothing {action}"
            )
        if isinstance(action, Draft):
            assert limits.drafts and not self.final, action

    def woken(self, now: float, wake: int) -> None:
        if wake == self.wake:
            self.drive(now)

    def answered(self, now: float, epoch: int) -> None:
        if epoch != self.epoch:
            return
        action, self.out = self.out, None
        assert action is not None
        result = self.chat.answer(action)
        if isinstance(result, RateLimited):
            self.holds.append((len(self.sent), now + result.retry_after))
        if isinstance(result, Ok | NotModified):
            if isinstance(action, Post):
                assert isinstance(result, Ok) and result.message_id is not None
                self.known[action.slot] = Posted(result.message_id, action.text)
            elif isinstance(action, Edit):
                self.known[action.slot] = Posted(action.message_id, action.text)
                self.unsure.discard(action.slot)
            elif isinstance(action, Delete):
                del self.known[action.slot]
                self.unsure.discard(action.slot)
        elif isinstance(result, Failed) and isinstance(action, Edit):
            self.unsure.add(action.slot)
        self.plan.report(result, now)
        assert self.plan.messages == tuple(self.known[s] for s in sorted(self.known))
        if not self.crash_while_out and self.crash_at_send == len(self.sent):
            self.sim.at(now, self.crash)
        self.drive(now)

    def crash(self, now: float) -> None:
        """The worker dies and starts again from what the log recorded."""
        self.crash_at_send = None
        record = self.plan.messages
        if isinstance(self.out, Edit | Delete) and self.edit_went_through:
            self.chat.apply(self.out)  # done on the platform, but never recorded
        self.epoch += 1
        self.out, self.done = None, None
        self.plan = ReplyPlan.resume(self.script.limits, record, budget=self.sim.budget)
        self.known = dict(enumerate(record))
        self.unsure = set(self.known)
        self.first_post_slot = len(record)
        (self.plan.finish if self.final else self.plan.stream)(self.text, now)
        self.drive(now)


class Simulation:
    """Replies delivered at once on one bot (one shared budget), on a fake clock."""

    def __init__(self, scripts: list[Script], budget: Budget) -> None:
        self.budget = budget
        self.queue: list[tuple[float, int, Callable[..., None], tuple[object, ...]]] = []
        self.order = itertools.count()
        ids = itertools.count(1)
        self.lanes = [
            Lane(s, self, ReplyPlan(s.limits, budget=budget), FakeChat(iter(s.answers), ids))
            for s in scripts
        ]
        for lane in self.lanes:
            for when, text, final in lane.script.texts:
                self.at(when, lane.feed, text, final)

    def at(self, when: float, call: Callable[..., None], *args: object) -> None:
        heapq.heappush(self.queue, (when, next(self.order), call, args))

    def run(self) -> None:
        now = 0.0
        for _ in range(100_000):
            if not self.queue:
                # A crash planned for a send that never came: after the reply was
                # delivered, before the worker acknowledged it.
                for lane in self.lanes:
                    if lane.crash_at_send is not None:
                        self.at(now + 1.0, lane.crash)
                if not self.queue:
                    break
            now, _, call, args = heapq.heappop(self.queue)
            call(now, *args)
        assert not self.queue, "the simulation did not settle"
        for lane in self.lanes:
            assert lane.done is not None, f"a reply never finished: {lane.plan.messages}"


limits_st = st.builds(
    Limits,
    # Mostly the usual platform (edits, no drafts), often the others.
    max_length=lengths,
    edit_interval=st.sampled_from([0.0, 0.2, 0.5, 1.0, 3.0]),
    send_interval=st.sampled_from([0.0, 0.3, 1.0]),
    can_edit=st.sampled_from([True, True, True, False]),
    can_delete=st.sampled_from([True, True, False]),
    drafts=st.sampled_from([False, False, True]),
    utf16=st.booleans(),
    first_chars=st.integers(0, 60),
    first_delay=st.sampled_from([0.0, 0.5, 2.0]),
    max_attempts=st.integers(1, 4),
    backoff=st.sampled_from([0.0, 0.5, 2.0]),
)
# Mostly "ok"; the retry-after is read only for "rate".
answers_st = st.lists(
    st.tuples(st.sampled_from(["ok"] * 6 + ["rate", "fail", "lost"]), st.floats(0.01, 10.0)),
    max_size=40,
)


replies = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), min_size=10, max_size=150
).map("".join)


@st.composite
def scripts(draw: st.DrawFn, max_lengths: st.SearchStrategy[int] = lengths) -> Script:
    streamed = draw(replies)
    cuts = sorted(draw(st.lists(st.integers(0, len(streamed)), min_size=3, max_size=30)))
    how = draw(st.sampled_from(["same", "same", "shorter", "longer", "rewritten", "empty"]))
    final = {
        "same": streamed,
        "shorter": streamed[: len(streamed) // 3],
        "longer": streamed + draw(texts),
        "rewritten": draw(texts),
        "empty": "",
    }[how]
    gaps = draw(st.lists(st.floats(0.0, 1.5), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    times = list(itertools.accumulate(gaps, initial=draw(st.floats(0.0, 5.0))))
    steps = [(t, streamed[:c], False) for t, c in zip(times, cuts, strict=False)]
    steps.append((times[len(cuts)], final, True))
    limits = replace(draw(limits_st), max_length=draw(max_lengths))
    return Script(limits, steps, draw(answers_st), draw(st.sampled_from([0.0, 0.05, 0.4])))


def final_text(script: Script) -> str:
    return script.texts[-1][1]


def check_delivered(lane: Lane) -> None:
    """Property 1 (and no message over the limit or unbalanced, checked as sent):
    a complete reply's messages hold exactly the final text."""
    assert lane.done is not None
    final, limits = final_text(lane.script), lane.script.limits
    if not lane.done.complete:
        assert lane.give_ups, "incomplete without a give-up"
        return
    held = list(lane.chat.messages.values())
    wanted = [c for c in split_reply(final, limits.max_length, utf16=limits.utf16) if not c.blank]
    if not limits.can_delete:
        assert all(text == BLANK for text in held[len(wanted) :])
        held = held[: len(wanted)]
    assert reassemble(held, final, limits) == final


def conforms(times: list[float], rate: float, burst: float) -> bool:
    """The sends fit a token bucket (checked by simulating one, debt allowed)."""
    tokens, last = burst, -math.inf
    for t in sorted(times):
        tokens = min(burst, tokens + (t - last) * rate) - 1 if last > -math.inf else tokens - 1
        last = t
        if tokens < -1e-6:
            return False
    return True


def check_budgets(sim: Simulation, rate: float, burst: float) -> None:
    """Property 2: no budget exceeded: per message, per chat, retry-afters, bot-wide."""
    for lane in sim.lanes:
        limits = lane.script.limits
        by_target: dict[tuple[str, int], list[float]] = {}
        for when, action in lane.sent:
            if not isinstance(action, Delete):
                kind = "draft" if isinstance(action, Draft) else "message"
                by_target.setdefault((kind, action.slot), []).append(when)
        for times in by_target.values():
            assert all(b - a >= limits.edit_interval - 1e-6 for a, b in itertools.pairwise(times))
        for before, until in lane.holds:
            for when, action in lane.sent[before:]:
                assert when >= until - 1e-9, f"{action} at {when}, held until {until}"
        times = [when for when, _ in lane.sent]
        assert all(b - a >= limits.send_interval - 1e-6 for a, b in itertools.pairwise(times))
    assert conforms([when for lane in sim.lanes for when, _ in lane.sent], rate, burst)


budgets_st = st.tuples(st.sampled_from([0.5, 2.0, 30.0]), st.sampled_from([1.0, 3.0]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scripts(), min_size=1, max_size=3), budgets_st)
def test_replies_arrive_whole_within_every_budget(
    replies: list[Script], budget: tuple[float, float]
) -> None:
    rate, burst = budget
    sim = Simulation(replies, Budget(rate, burst))
    sim.run()
    for lane in sim.lanes:
        check_delivered(lane)
        answers = {kind for kind, _ in lane.script.answers}
        if not answers & {"fail", "lost"}:
            # Rate limits and "not modified" alone never cost the final text.
            assert lane.done == Done(complete=True)
    check_budgets(sim, rate, burst)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scripts(max_lengths=st.sampled_from([MIN_LENGTH, 40, 57])),  # replies of several messages
    st.one_of(st.integers(1, 4), st.integers(5, 12)),
    st.booleans(),
    st.booleans(),
)
def test_a_reply_resumed_after_a_crash_finishes_without_posting_twice(
    script: Script, crash_at_send: int, while_out: bool, edit_went_through: bool
) -> None:
    """Property 5: resumed from the recorded posts at any moment, the reply ends
    with the same messages, each posted once (the checks as sent: no post of a
    slot the record has, no edit that changes nothing by the record). The crash
    comes at a send, while it is out (an edit or delete may have gone through
    unrecorded) or just after its answer was recorded, or after the reply is over."""
    sim = Simulation([script], Budget(30.0, 30.0))
    lane = sim.lanes[0]
    lane.crash_at_send, lane.crash_while_out = crash_at_send, while_out
    lane.edit_went_through = edit_went_through
    sim.run()
    check_delivered(lane)
