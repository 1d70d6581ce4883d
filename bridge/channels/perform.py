"""Carrying out a :class:`~bridge.channels.reply_plan.ReplyPlan` on a platform.

The plan decides; :func:`drive` only asks it for the next step, does it
with :func:`perform`, and reports the platform's answer back. The delivery
worker drives an agent's reply with it (recording each posted message in
the log as it goes, through ``on_result``); a handler's
:meth:`~bridge.channels.thread.Thread.post` and
:meth:`~bridge.channels.thread.Thread.stream` drive theirs with it too, so
every message the bridge sends keeps to the same splitting and budgets.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from . import reply_plan as rp
from .errors import NotModified, PlatformError, RateLimited
from .platform import Platform

__all__ = ["Feed", "Wakeup", "drive", "perform"]

log = logging.getLogger("bridge.channels")


class Feed(Protocol):
    """Where a driver learns that the plan has something new (more text,
    the final text): whoever feeds the plan sets ``wake`` after doing so.
    The driver puts a fresh event there before each look at the plan."""

    wake: anyio.Event


@dataclass
class Wakeup:
    """The plainest :class:`Feed`."""

    wake: anyio.Event = field(default_factory=anyio.Event)


async def perform(
    platform: Platform, thread: str, action: rp.Action, *, draft_id: int = 1
) -> rp.Result:
    """Do one action of a plan; the platform's answer as a plan result."""
    try:
        if isinstance(action, rp.Post):
            return rp.Ok(await platform.post_reply(thread, action.text, draft_id=draft_id))
        if isinstance(action, rp.Edit):
            await platform.edit(thread, str(action.message_id), action.text)
        elif isinstance(action, rp.Draft):
            shown = await platform.draft(thread, draft_id, action.text)
            return rp.Ok(shown) if shown else rp.Ok()
        else:
            await platform.delete(thread, str(action.message_id))
        return rp.Ok()
    except RateLimited as exc:
        return rp.RateLimited(exc.retry_after)
    except NotModified:
        return rp.NotModified()
    except PlatformError as exc:
        return rp.Failed(str(exc))


async def drive(
    platform: Platform,
    thread: str,
    plan: rp.ReplyPlan,
    feed: Feed,
    *,
    clock: Callable[[], float],
    draft_base: int = 0,
    on_result: Callable[[rp.Action, rp.Result], Awaitable[None]] | None = None,
    what: str = "a reply",
) -> bool:
    """Carry out the plan's steps until it is done; returns whether the
    final text was delivered whole. A draft of slot N uses the draft id
    ``draft_base + N + 1``."""
    while True:
        # A fresh wake-up before looking: text fed after this poll sets
        # the one the wait below waits on.
        feed.wake = anyio.Event()
        step = plan.poll(clock())
        if isinstance(step, rp.Done):
            try:
                await platform.drafts_over(thread, draft_base)
            except PlatformError as exc:
                log.warning("%s: a preview of %s is left over: %s", platform.name, what, exc)
            if not step.complete:
                log.warning("%s: %s was not delivered whole", platform.name, what)
            return step.complete
        if isinstance(step, rp.GiveUp):
            log.warning(
                "%s: gave up %s of %s: %s",
                platform.name,
                type(step.action).__name__,
                what,
                step.reason,
            )
            continue
        if isinstance(step, rp.Wait):
            delay = math.inf if step.until is None else max(0.0, step.until - clock())
            with anyio.move_on_after(delay):
                await feed.wake.wait()
            continue
        draft_id = draft_base + step.slot + 1
        result = await perform(platform, thread, step, draft_id=draft_id)
        plan.report(result, clock())
        if on_result is not None:
            # What the platform did is recorded even when the worker is
            # being stopped: a post done but not logged would be posted
            # again by the next bridge.
            with anyio.CancelScope(shield=True):
                await on_result(step, result)
