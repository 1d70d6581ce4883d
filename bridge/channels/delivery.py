"""The delivery worker: a channel's conversations, rendered on its platform.

One :class:`Delivery` per chat channel follows the log of each of the
channel's conversations from the channel's acknowledged position and
carries out what the log asks for:

- a turn's streamed text and final reply through a
  :class:`~bridge.channels.reply_plan.ReplyPlan` (post, edit, draft, split,
  within the platform's budgets); every message it posts is recorded in the
  log (``delivery.posted``, with the platform's id) as soon as the platform
  names it, and the turn's end is recorded with the acknowledgement
  (``delivery.finished``, moving the channel's position past the turn);
- an approval request as a message with Allow once / Allow for this
  session / Deny buttons, edited to show the answer when it comes.

After a crash the worker starts again from the acknowledged position: the
turn that was being delivered is replayed from the log, and the messages it
had posted are taken from the ``delivery.posted`` events, so the reply is
finished by editing them, not by posting them again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup

from bridge.conversations.dispatcher import Dispatcher
from bridge.store.records import (
    DELIVERY_EDITED,
    DELIVERY_FINISHED,
    DELIVERY_POSTED,
    TURN_COMPLETED,
    TURN_PARTIAL,
    TURN_PERMISSION,
    TURN_PERMISSION_ANSWERED,
    TURN_QUEUED,
    TURN_STARTED,
    Event,
)

from . import reply_plan as rp
from .errors import NotModified, PlatformError
from .inbound import approval_data
from .perform import drive
from .platform import Button, Platform

__all__ = ["Delivery", "final_text"]

log = logging.getLogger("bridge.channels")

#: Seconds before following a conversation again after a failure.
RETRY_SECS = 1.0


def final_text(completed: Event) -> str:
    """What a person is shown as a turn's end: the reply, or why there is none."""
    data = completed.data
    reply = str(data.get("reply") or "")
    if data.get("status") == "ok":
        return reply or "(no reply)"
    error = str(data.get("error") or data.get("status") or "the turn failed")
    hint = str(data.get("hint") or "")
    parts = [p for p in (reply, f"⚠ {error}", hint) if p]
    return "\n\n".join(parts)


@dataclass
class _Turn:
    """A turn being delivered: its plan, the text so far, and a wake-up
    (the :class:`~bridge.channels.perform.Feed` its driver waits on)."""

    number: int
    plan: rp.ReplyPlan
    text: str = ""
    #: Set when there is something new for the plan (text, the final text).
    wake: anyio.Event = field(default_factory=anyio.Event)
    #: Set when the plan is done (delivered, or given up), or its driver failed.
    over: anyio.Event = field(default_factory=anyio.Event)
    failed: BaseException | None = None


class Delivery:
    """Renders one channel's conversations on ``platform`` (see the module
    docstring). ``limits`` are the platform's, or a function giving them for
    a thread (Telegram has drafts in private chats only); ``budget`` is
    shared by every conversation of the bot."""

    def __init__(
        self,
        platform: Platform,
        dispatcher: Dispatcher,
        limits: rp.Limits | Callable[[str], rp.Limits],
        *,
        budget: rp.Budget | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform = platform
        self.dispatcher = dispatcher
        self.limits = limits
        self.budget = budget
        self.clock = clock
        self._followed: set[str] = set()
        self._tg: TaskGroup | None = None

    @property
    def channel(self) -> str:
        return self.platform.name

    async def run(self) -> None:
        """Follow the channel's conversations until cancelled."""
        store = self.dispatcher.store
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self.dispatcher.hub.observers.append(self._observe)
            try:
                for conv in await store.conversations(channel=self.channel):
                    if await store.acked(self.channel, conv.id) < conv.last_event:
                        self.follow(conv.id)
                await anyio.sleep_forever()
            finally:
                self.dispatcher.hub.observers.remove(self._observe)

    def _observe(self, event: Event, remote: bool) -> None:
        if event.type in (TURN_QUEUED, TURN_PERMISSION):
            key = self.dispatcher.key_of(event.conversation)
            if key is not None and key.channel == self.channel:
                self.follow(event.conversation)

    def follow(self, conversation_id: str) -> None:
        """Deliver this conversation from now on (once per conversation)."""
        if conversation_id in self._followed or self._tg is None:
            return
        self._followed.add(conversation_id)
        self._tg.start_soon(self._follow_always, conversation_id)

    async def _follow_always(self, cid: str) -> None:
        """Follow a conversation; if that fails (the store, a bug), say so and
        start again from the acknowledged position: nothing is skipped, and one
        conversation's trouble never stops the others."""
        while True:
            try:
                await self._follow(cid)
                return
            except Exception:
                log.exception("%s: delivering %s failed; starting again", self.channel, cid)
                await anyio.sleep(RETRY_SECS)

    # --- one conversation

    async def _follow(self, cid: str) -> None:
        store = self.dispatcher.store
        conv = await store.get(cid)
        if conv is None:
            return
        thread = conv.key.key
        limits = self.limits(thread) if callable(self.limits) else self.limits
        position = await store.acked(self.channel, cid)
        posted, cards = await self._recorded(cid, position)
        current: _Turn | None = None
        async with anyio.create_task_group() as tg, self.dispatcher.subscribe(cid, position) as sub:
            async for event in sub:
                if event.type == TURN_STARTED:
                    current = _Turn(event.turn, self._plan_for(limits, posted, event.turn))
                    tg.start_soon(self._drive, cid, thread, current)
                elif event.type == TURN_PARTIAL and current and event.turn == current.number:
                    offset = int(event.data.get("offset", 0))
                    current.text = current.text[:offset] + str(event.data.get("text", ""))
                    current.plan.stream(current.text, self.clock())
                    current.wake.set()
                elif event.type == TURN_PERMISSION and event.id not in cards:
                    cards[event.id] = await self._card(cid, thread, event)
                elif event.type == TURN_PERMISSION_ANSWERED:
                    await self._answered(thread, cards, event)
                elif event.type == TURN_COMPLETED:
                    if current is None or current.number != event.turn:
                        # Its start was before our position: deliver the end alone.
                        current = _Turn(event.turn, self._plan_for(limits, posted, event.turn))
                        tg.start_soon(self._drive, cid, thread, current)
                    current.plan.finish(final_text(event), self.clock())
                    current.wake.set()
                    await current.over.wait()
                    if current.failed is not None:
                        # Not delivered: no acknowledgement; follow again.
                        raise current.failed
                    await store.delivered(
                        cid,
                        self.channel,
                        DELIVERY_FINISHED,
                        [str(m.message_id) for m in current.plan.messages],
                        turn=event.turn,
                        position=event.id,
                    )
                    current = None

    def _plan_for(
        self, limits: rp.Limits, posted: dict[int, list[tuple[str, str]]], turn: int
    ) -> rp.ReplyPlan:
        if turn in posted:
            return rp.ReplyPlan.resume(limits, posted[turn], budget=self.budget)
        return rp.ReplyPlan(limits, budget=self.budget)

    async def _recorded(
        self, cid: str, position: int
    ) -> tuple[dict[int, list[tuple[str, str]]], dict[int, str]]:
        """What this channel posted after ``position``: each turn's messages
        (id, text), and the approval cards by request id."""
        posted: dict[int, list[tuple[str, str]]] = {}
        cards: dict[int, str] = {}
        for e in await self.dispatcher.store.read(cid, position, 100_000):
            if e.type == DELIVERY_POSTED and e.data.get("channel", self.channel) == self.channel:
                ids = e.data.get("ids", ())
                if "approval" in e.data and ids:
                    cards[int(e.data["approval"])] = str(ids[0])
                elif ids:
                    mine = posted.setdefault(e.turn, [])
                    known = [i for i, (mid, _) in enumerate(mine) if mid == str(ids[0])]
                    entry = (str(ids[0]), str(e.data.get("text", "")))
                    if known:  # a streamed draft, finished by its post
                        mine[known[0]] = entry
                    else:
                        mine.append(entry)
            elif e.type == DELIVERY_EDITED and "deleted" in e.data:
                gone = str(e.data["deleted"])
                posted[e.turn] = [p for p in posted.get(e.turn, []) if p[0] != gone]
        return posted, cards

    async def _drive(self, cid: str, thread: str, turn: _Turn) -> None:
        """Carry out the plan's steps until it is done."""
        try:
            await self._steps(cid, thread, turn)
        except Exception as exc:
            turn.failed = exc
            raise
        finally:
            turn.over.set()

    async def _steps(self, cid: str, thread: str, turn: _Turn) -> None:
        async def record(step: rp.Action, result: rp.Result) -> None:
            # A draft that is a real message (a Slack stream) is logged as
            # soon as the platform names it, like a post: a restart then
            # finishes it by editing (its later post logs the same id again).
            if isinstance(step, rp.Post | rp.Draft) and isinstance(result, rp.Ok):
                if isinstance(step, rp.Draft) and result.message_id is None:
                    return
                await self.dispatcher.store.delivered(
                    cid,
                    self.channel,
                    DELIVERY_POSTED,
                    [str(result.message_id)],
                    turn=turn.number,
                    data={"slot": step.slot, "text": step.text},
                )
            elif isinstance(step, rp.Delete) and isinstance(result, rp.Ok):
                await self.dispatcher.store.delivered(
                    cid,
                    self.channel,
                    DELIVERY_EDITED,
                    [str(step.message_id)],
                    turn=turn.number,
                    data={"deleted": str(step.message_id)},
                )

        await drive(
            self.platform,
            thread,
            turn.plan,
            turn,
            clock=self.clock,
            draft_base=turn.number * 100,
            on_result=record,
            what=f"turn {turn.number} of {cid}",
        )

    # --- approvals

    async def _card(self, cid: str, thread: str, request: Event) -> str:
        data = request.data
        shown = json.dumps(data.get("input"), ensure_ascii=False, indent=2)
        text = f"The agent asks to use {data.get('tool')}."
        if data.get("description"):
            text += f"\n{data['description']}"
        text = f"{text}\n{shown}"[: self.platform.capabilities.max_text]
        buttons = (
            Button("Allow once", approval_data(request.id, "once")),
            Button("Allow for this session", approval_data(request.id, "session")),
            Button("Deny", approval_data(request.id, "deny")),
        )
        try:
            message_id = await self.platform.post(thread, text, buttons=buttons)
        except PlatformError as exc:
            log.warning("%s: cannot show approval %d: %s", self.channel, request.id, exc)
            return ""
        await self.dispatcher.store.delivered(
            cid,
            self.channel,
            DELIVERY_POSTED,
            [message_id],
            turn=request.turn,
            data={"approval": request.id, "text": text},
        )
        return message_id

    async def _answered(self, thread: str, cards: dict[int, str], answer: Event) -> None:
        request_id = int(answer.data.get("request", 0))
        message_id = cards.get(request_id)
        if not message_id:
            return
        verdict = "Allowed" if answer.data.get("allow") else "Denied"
        if answer.data.get("scope") == "session" and answer.data.get("allow"):
            verdict = "Allowed for this session"
        by = answer.data.get("by") or "someone"
        text = f"{verdict}: {answer.data.get('tool') or 'the tool'} (answered by {by})."
        try:
            await self.platform.edit(thread, message_id, text)
        except NotModified:
            pass  # shown already (replayed after a restart)
        except PlatformError as exc:
            log.warning("%s: cannot update approval %d: %s", self.channel, request_id, exc)
