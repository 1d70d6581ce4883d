"""The platform side of the Thread handle: what its methods give back, and
the calls they make (a text posted or streamed through a reply plan, a
question asked and waited on, one call with its rate limits waited out).

:mod:`bridge.channels.thread` is the handle handlers use; this module keeps
its platform work in one place, so the handle reads as what it offers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from . import reply_plan as rp
from .choices import Choices, choice_data
from .errors import NotModified, PlatformError, RateLimited
from .perform import Wakeup, drive
from .platform import Button, Platform

__all__ = [
    "MAX_OPTIONS",
    "AgentReply",
    "Said",
    "Sent",
    "ask",
    "call",
    "checked_options",
    "once",
    "stream",
]

log = logging.getLogger("bridge.channels")

#: How many times a single call waits out a rate limit before giving up.
RATE_LIMIT_ATTEMPTS = 4
#: The longest ``retry_after`` a handler's call waits (a longer one fails it).
MAX_RETRY_AFTER = 60.0
MAX_OPTIONS = 20


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of a post, an update, a deletion or a file.

    ``ok`` is false when the platform cannot do it or refused it; ``error``
    says why. ``id`` is the (last) message's platform id, ``ids`` all of
    them when a long text took several messages."""

    ok: bool
    id: str = ""
    ids: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class AgentReply:
    """How a turn :meth:`Thread.run_agent` started ended.

    ``status`` is the turn's (``ok``, ``error``, ``timeout``, ``cancelled``,
    ``abandoned``), or ``refused`` when the bridge did not take the prompt
    (busy, shutting down, an empty prompt): then ``turn`` is 0.
    """

    ok: bool
    text: str
    status: str
    error: str = ""
    hint: str = ""
    turn: int = 0
    session_id: str = ""


@dataclass(frozen=True, slots=True)
class Said:
    """One entry of :meth:`Thread.get_messages`: ``role`` is ``person`` or
    ``agent``; ``by`` the person's name (``""`` for the agent)."""

    id: int
    role: str
    text: str
    by: str
    at: float


async def stream(
    platform: Platform,
    thread: str,
    chunks: AsyncIterable[str],
    *,
    limits: rp.Limits,
    budget: rp.Budget | None,
    clock: Callable[[], float],
) -> Sent:
    """Post text as it comes, through a reply plan (split, drafted or
    edited within the budgets); the message ends holding all of it."""
    plan = rp.ReplyPlan(limits, budget=budget)
    feed = Wakeup()
    text = ""
    done: list[bool] = []

    async def carry() -> None:
        done.append(
            await drive(
                platform,
                thread,
                plan,
                feed,
                clock=clock,
                draft_base=_draft_base(),
                what=f"a post to {thread}",
            )
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(carry)
        try:
            async for chunk in chunks:
                text += chunk
                plan.stream(text, clock())
                feed.wake.set()
        finally:
            plan.finish(text, clock())
            feed.wake.set()
    ids = tuple(str(m.message_id) for m in plan.messages)
    last = ids[-1] if ids else ""
    if done and done[0]:
        return Sent(True, last, ids)
    return Sent(False, last, ids, error="the platform refused some of it")


async def once(text: str) -> AsyncIterator[str]:
    """A text as a stream of one chunk."""
    yield text


async def call(work: Callable[[], Awaitable[Any]]) -> Sent:
    """One platform call (returning a message id, or None), rate limits
    waited out; what the platform refused is ``ok=False``, not raised."""
    for attempt in range(RATE_LIMIT_ATTEMPTS):
        try:
            found = await work()
            return Sent(True, str(found), (str(found),))
        except NotModified:
            return Sent(True)
        except RateLimited as exc:
            if attempt == RATE_LIMIT_ATTEMPTS - 1 or exc.retry_after > MAX_RETRY_AFTER:
                return Sent(False, error=f"rate limited: {exc}")
            await anyio.sleep(exc.retry_after)
        except PlatformError as exc:
            return Sent(False, error=str(exc))
    raise AssertionError("unreachable")  # pragma: no cover


async def ask(
    platform: Platform,
    choices: Choices,
    thread: str,
    question: str,
    options: tuple[str, ...],
    *,
    askees: frozenset[str],
    timeout: float,
    default: str | None,
) -> str | None:
    """Post a question (buttons, or a numbered list), wait for its answer
    or the timeout, and edit it to show the outcome."""
    caps = platform.capabilities
    open_question = choices.ask(thread, options, askees)
    try:
        if caps.buttons:
            text = question
            buttons = tuple(
                Button(o, choice_data(open_question.token, i)) for i, o in enumerate(options)
            )
        else:
            listed = "\n".join(f"{i}. {o}" for i, o in enumerate(options, 1))
            text = f"{question}\n{listed}\nReply with a number."
            buttons = ()
        try:
            message_id = await platform.post(thread, text[: caps.max_text], buttons=buttons)
        except PlatformError as exc:
            log.warning("%s: cannot ask in %s: %s", platform.name, thread, exc)
            return default
        with anyio.move_on_after(timeout):
            await open_question.answered.wait()
        answer = open_question.answer
        if answer is not None:
            chosen: str | None = options[answer.index]
            outcome = f"{question}\n→ {chosen} (answered by {answer.by})"
        else:
            chosen = default
            went = f"; went with {default}" if default is not None else ""
            outcome = f"{question}\n→ no answer in time{went}"
        if caps.edit:
            try:
                await platform.edit(thread, message_id, outcome[: caps.max_text])
            except PlatformError as exc:
                log.info("%s: cannot show the outcome of a question: %s", platform.name, exc)
        return chosen
    finally:
        choices.close(open_question)


def checked_options(options: Sequence[str], default: str | None) -> tuple[str, ...]:
    """``await_choice``'s options, or ValueError saying what is wrong with them."""
    found = tuple(options)
    if isinstance(options, str) or not found:
        raise ValueError("await_choice needs a list of options, at least one")
    if len(found) > MAX_OPTIONS:
        raise ValueError(f"await_choice takes at most {MAX_OPTIONS} options, got {len(found)}")
    if not all(isinstance(o, str) and o.strip() for o in found):
        raise ValueError("await_choice: every option must be a non-empty string")
    if len(set(found)) != len(found):
        raise ValueError("await_choice: the options must differ from each other")
    if default is not None and default not in found:
        raise ValueError(f"await_choice: the default {default!r} is not one of the options")
    return found


_drafts = 0


def _draft_base() -> int:
    """A draft id range of its own for each stream (agents' replies use turn * 100)."""
    global _drafts
    _drafts += 1
    return 1_000_000 + _drafts * 100
