"""Rendering a streamed reply on a chat platform: a plan, no I/O.

A :class:`ReplyPlan` is told, over time, the text of an agent's reply so far
(:meth:`~ReplyPlan.stream`) and then its final text (:meth:`~ReplyPlan.finish`),
and is asked what to do (:meth:`~ReplyPlan.poll`). It answers with one step:

* an action for the delivery worker to carry out: :class:`Post` a new
  message, :class:`Edit` one it posted, :class:`Draft` (send or update an
  ephemeral preview, Telegram's ``sendMessageDraft``), :class:`Delete` a
  message; the worker then tells the plan what became of it
  (:meth:`~ReplyPlan.report`: :class:`Ok`, :class:`RateLimited`,
  :class:`NotModified` or :class:`Failed`), and polls again;
* :class:`Wait`: nothing to do before ``until`` (or, when that is None,
  before more text or the final text comes); poll again then, and the plan
  may say to wait longer (new streamed text is laid out only when a step
  could be taken: see Cost below);
* :class:`GiveUp`: an action failed too often and is dropped (for the
  worker to log; poll again);
* :class:`Done`: the final text is delivered (``complete``) or cannot be.

The plan never reads a clock and does no I/O: every call takes ``now`` (the
worker's monotonic clock, in seconds), and waking the plan at a step's
``until`` is the worker's job; so is polling again after new text or a
result. One action is out at a time, so messages are posted in order and
each result belongs to the action before it. (Slack's native streaming,
``chat.startStream``/``appendStream``, appends rather than replaces and is
not this plan's; this plan is its ``chat.update`` fallback.)

Cost. Streamed text is cut into messages lazily: :meth:`~ReplyPlan.stream`
only keeps it, and :meth:`~ReplyPlan.poll` cuts it when the budgets would
let a step go now (otherwise it answers :class:`Wait` until they would,
without looking). And a text that grew at its end is cut again only from
its last two messages on (``split_reply``'s ``after``). So a reply that
streams in thousands of small chunks costs about one cut of its newest
part per send the budget allows, not a cut of the whole text per chunk.

Layout. The text is cut into messages by
:func:`~bridge.channels.reply_split.split_reply` (paragraph, line, space, hard;
code fences closed and reopened at cuts, balanced in every message); slot
``i`` of a reply is its ``i``-th non-blank chunk. The plan wants message
``i`` to hold chunk ``i``; each poll compares that with what the messages
hold (as far as results told it) and picks the first difference it may act
on now. So it coalesces by construction: however often the text grew while
it waited, it sends the latest text once, and never an edit whose text the
message already holds, as far as it knows. It does not know after a failed
edit (which may have gone through) or for a resumed plan's messages: the
next edit of such a message is sent even with the text recorded (the
platform answers "not modified" if the message held it). Messages that
filled up keep their chunk as the text grows (the cut is stable), so they
are not edited again while the reply streams. The streamed text is expected
to grow, but any text is laid out the same way; a chunk whose text is only
whitespace is never posted (platforms refuse blank messages), so the
messages hold the text but for such runs of whitespace.

Pacing while the reply streams:

* The first message (or draft) waits until the text has ``first_chars``
  visible characters or ``first_delay`` seconds passed since text first
  came, so a reply does not open with a flurry of one-word edits.
* Writes to one message (a post and the edits after it; the updates of one
  draft) are ``edit_interval`` apart; all sends in the chat go through the
  chat's :class:`Budget` (by default one per ``send_interval``); and, if
  the plan was given one, through the budget shared by every chat of the
  bot (Telegram's 30 a second). A token is taken when an action is handed
  out, and not given back if the platform refuses it.
* Without drafts, the first chunk is posted, edited as it grows, and when
  it fills up it gets its last edit and the next chunk is posted.
* With drafts, chunks that filled up are posted as real messages and the
  growing last one is shown as a draft; a real message makes a draft
  vanish, so the draft after a post is the next chunk's.
* Where messages cannot be edited (``can_edit=False``), nothing is posted
  before the final text (a draft, where there are drafts, shows the tail).

The final text replaces the preview: its chunks go into the messages
already posted (edits, where a message holds something else), more are
posted if it is longer, and messages left over when it is shorter are
deleted (``can_delete``) or else edited to :data:`BLANK`. The final is
always posted as real messages, never left as a draft. It waits for no
``first_chars``/``first_delay``, only for the budgets. A final text that is
blank leaves nothing posted (the channel may say "no reply" itself).

Platform answers:

* :class:`Ok`: done; a post's answer names the new message's id.
* :class:`NotModified` (the platform refused an edit that changes
  nothing): the message holds the text, as for :class:`Ok`. A delete of a
  message the platform no longer has should be reported :class:`Ok` too.
* :class:`RateLimited`: nothing is sent in this reply before
  ``retry_after`` seconds pass, and the chat budget is held as long; then
  the latest text goes (the final text is never dropped, however many
  times this happens). A limit the platform says is global should be put
  on the shared budget by the worker (:meth:`Budget.hold`).
* :class:`Failed`: retried after ``backoff`` seconds, doubling up to
  ``max_backoff``, ``max_attempts`` times in all for one slot's action of
  one kind; then a :class:`GiveUp`. A give-up while streaming stops the
  preview (why keep failing); the final text is then still attempted, with
  fresh attempts. A give-up on the final text's edit or delete leaves that
  message as it is and carries on with the others; a give-up on its post
  ends the plan (posting what comes after would put the reply out of
  order). Either way :class:`Done` then says ``complete=False``.

Resuming. :attr:`ReplyPlan.messages` is what the delivery worker logs after
each result: every message posted, with its id and the text it holds.
:meth:`ReplyPlan.resume` rebuilds a plan from that record after a crash;
given the reply's latest text again, it finishes the reply by editing the
messages already posted, never by posting them again. An action that was
out when the worker crashed is not in the record, so each message is
edited once more whatever the record says (an edit that had gone through
is answered "not modified"); a post whose answer was lost before it was
logged is the one message that can appear twice, as no platform here takes
an idempotency key. (Where messages cannot be edited they are posted only
once the final text is known, and the record is trusted.) Draft and budget
times are not recorded: a resumed plan starts with fresh budgets.

Errors: bad :class:`Limits` or :class:`Budget` values raise
:class:`ValueError`; calling :meth:`~ReplyPlan.poll` while an action is out,
or :meth:`~ReplyPlan.report` when none is, is a bug in the worker and
raises :class:`RuntimeError`. Platform answers are data, never exceptions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .reply_split import Chunk, split_reply
from .reply_steps import (
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
    Result,
    Step,
    Wait,
)

__all__ = [
    "BLANK",
    "DISCORD",
    "SLACK",
    "TELEGRAM",
    "Action",
    "Budget",
    "Delete",
    "Done",
    "Draft",
    "Edit",
    "Failed",
    "GiveUp",
    "Limits",
    "MessageId",
    "NotModified",
    "Ok",
    "Post",
    "Posted",
    "RateLimited",
    "ReplyPlan",
    "Result",
    "Step",
    "Wait",
]


def _target(action: Action) -> tuple[str, int]:
    """What ``edit_interval`` spaces writes to: one message, or one draft."""
    return ("draft" if isinstance(action, Draft) else "message", action.slot)


class ReplyPlan:
    """The plan for one reply on one chat (see the module docstring).

    ``budget`` is the bot-wide :class:`Budget` every plan of the bot shares
    (None: no such limit); ``chat`` the chat's, if the worker shares it with
    its other sends there (None: the plan makes one from
    ``limits.send_interval``).
    """

    def __init__(
        self, limits: Limits, *, budget: Budget | None = None, chat: Budget | None = None
    ) -> None:
        self.limits = limits
        if chat is None and limits.send_interval > 0:
            chat = Budget.interval(limits.send_interval)
        self._chat = chat
        self._budgets = [b for b in (budget, chat) if b is not None]
        self._text = ""
        self._final = False
        self._chunks: list[Chunk] = []
        self._texts: list[str | None] = []  # each chunk's text (None: blank)
        self._laid = ""  # the text the layout was cut from
        self._dirty = False
        self._layout: list[str] = []
        self._messages: dict[int, Posted] = {}
        # Slots whose message may hold something else than recorded: an edit
        # failed (it may have gone through), or the plan was resumed.
        self._unsure: set[int] = set()
        self._draft: tuple[int, str] | None = None
        self._first_text_at: float | None = None
        self._last_write: dict[tuple[str, int], float] = {}
        self._blocked_until = -math.inf
        self._backoff_until = -math.inf
        self._failures: dict[tuple[str, int], int] = {}
        self._out: Action | None = None
        self._out_in_final = False
        self._give_ups: list[GiveUp] = []
        self._previews_off = False
        self._abandoned: set[int] = set()
        self._stopped = False
        self._complete = True
        self._done = False

    @classmethod
    def resume(
        cls,
        limits: Limits,
        posted: Iterable[tuple[MessageId, str]],
        *,
        budget: Budget | None = None,
        chat: Budget | None = None,
    ) -> ReplyPlan:
        """A plan for a reply whose messages ``posted`` (ids and the texts
        they hold, in order: :attr:`messages` as the log recorded it) are
        already on the platform. Give it the reply's latest text next."""
        plan = cls(limits, budget=budget, chat=chat)
        plan._messages = {
            slot: Posted(message_id, text) for slot, (message_id, text) in enumerate(posted)
        }
        plan._unsure = set(plan._messages)
        return plan

    # --- what the worker reads -------------------------------------------------------

    @property
    def messages(self) -> tuple[Posted, ...]:
        """The messages posted and what each holds, in reply order: what to log."""
        return tuple(self._messages[slot] for slot in sorted(self._messages))

    @property
    def done(self) -> bool:
        """:class:`Done` was handed out."""
        return self._done

    # --- text in ---------------------------------------------------------------------

    def stream(self, text: str, now: float) -> None:
        """The reply so far. Ignored once the final text is known."""
        if self._final:
            return
        if self._first_text_at is None and text.strip():
            self._first_text_at = now
        self._set_text(text)

    def finish(self, text: str, now: float) -> None:
        """The final text, which replaces whatever streamed (and, called
        again before :class:`Done`, the final text given before)."""
        if not self._final:
            # A fresh start for retries: the final text is always attempted.
            self._final = True
            self._failures.clear()
            self._previews_off = False
        self._set_text(text)

    def _set_text(self, text: str) -> None:
        # Cut into messages only when a step may be taken (see poll): a
        # reply streaming in many small chunks is not cut again for each.
        if text != self._text:
            self._text = text
            self._dirty = True

    def _relayout(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        text = self._text
        # A streamed text grows at its end: cut again only what can change.
        old = self._chunks if text.startswith(self._laid) else []
        self._laid = text
        chunks = split_reply(text, self.limits.max_length, utf16=self.limits.utf16, after=old)
        # Kept chunks keep their text (the same string, so comparing it with
        # what a message holds is quick).
        same = 0
        while same < min(len(old), len(chunks)) and chunks[same] is old[same]:
            same += 1
        texts = self._texts[:same] + [
            None if chunk.blank else chunk.text for chunk in chunks[same:]
        ]
        self._chunks, self._texts = chunks, texts
        self._layout = [t for t in texts if t is not None]

    # --- steps out -------------------------------------------------------------------

    def poll(self, now: float) -> Step:
        """What to do now (see the module docstring). After an action, call
        :meth:`report` before polling again."""
        if self._out is not None:
            raise RuntimeError(f"poll() while {self._out} is out: report() its result first")
        if self._dirty and not self._final and not self._give_ups and not self._done:
            # New text, but nothing can be sent before ``gate``: look then.
            gate = max(now, self._blocked_until, self._backoff_until)
            for budget in self._budgets:
                gate = max(gate, budget.ready_at(now))
            if gate > now:
                return Wait(gate)
        self._relayout()
        wanted = self._wanted()
        if self._give_ups:
            return self._give_ups.pop(0)
        if self._done:
            return Done(self._complete)
        if not wanted or self._stopped:
            if self._final:
                self._done = True
                return Done(self._complete and not self._stopped)
            return Wait(None)
        best: tuple[float, Action] | None = None
        for action in wanted:
            when = self._ready_at(action, now)
            if best is None or when < best[0]:
                best = (when, action)
        assert best is not None
        when, action = best
        if when > now:
            return Wait(when)
        for budget in self._budgets:
            budget.take(now)
        if not isinstance(action, Delete):
            self._last_write[_target(action)] = now
        self._out = action
        self._out_in_final = self._final
        return action

    def _ready_at(self, action: Action, now: float) -> float:
        when = max(now, self._blocked_until, self._backoff_until)
        if not isinstance(action, Delete):
            last = self._last_write.get(_target(action), -math.inf)
            when = max(when, last + self.limits.edit_interval)
        if not self._final and not self._messages and self._draft is None:
            when = max(when, self._first_send_at())
        for budget in self._budgets:
            when = max(when, budget.ready_at(now))
        return when

    def _first_send_at(self) -> float:
        """When the first preview may go: at once with enough text, else after the delay."""
        if self._first_text_at is None or len(self._text.strip()) >= self.limits.first_chars:
            return -math.inf
        return self._first_text_at + self.limits.first_delay

    def _wanted(self) -> list[Action]:
        """Every action that would bring the platform closer to the layout, in order."""
        if self._final:
            return self._wanted_final()
        if self._previews_off:
            return []
        layout, messages = self._layout, self._messages
        if not self.limits.can_edit:
            last = len(layout) - 1
            if self.limits.drafts and layout and self._draft != (last, layout[last]):
                return [Draft(last, layout[last])]
            return []
        wanted: list[Action] = []
        for slot, text in enumerate(layout):
            posted = messages.get(slot)
            if posted is not None:
                if posted.text != text or slot in self._unsure:
                    wanted.append(Edit(slot, posted.message_id, text))
            elif self.limits.drafts and slot == len(layout) - 1:
                if self._draft != (slot, text):
                    wanted.append(Draft(slot, text))
            else:
                wanted.append(Post(slot, text))
                break
        return wanted

    def _wanted_final(self) -> list[Action]:
        layout, messages = self._layout, self._messages
        # Where messages cannot be edited, nothing can have changed them.
        unsure = self._unsure if self.limits.can_edit else set()
        wanted: list[Action] = []
        for slot, text in enumerate(layout):
            posted = messages.get(slot)
            if slot in self._abandoned:
                continue
            if posted is None:
                wanted.append(Post(slot, text))
                break
            if posted.text == text and slot not in unsure:
                continue
            edit = Edit(slot, posted.message_id, text)
            if self.limits.can_edit:
                wanted.append(edit)
            else:
                self._abandon(GiveUp(edit, 0, "the platform cannot edit messages"))
        extras = [slot for slot in messages if slot >= len(layout) and slot not in self._abandoned]
        for slot in sorted(extras, reverse=True):
            posted = messages[slot]
            if self.limits.can_delete:
                wanted.append(Delete(slot, posted.message_id))
            elif posted.text != BLANK or slot in unsure:
                edit = Edit(slot, posted.message_id, BLANK)
                if self.limits.can_edit:
                    wanted.append(edit)
                else:
                    self._abandon(GiveUp(edit, 0, "the platform cannot edit or delete messages"))
        return wanted

    def _abandon(self, give_up: GiveUp) -> None:
        """The final text's ``give_up.action`` will not be done: say so once, go on."""
        self._give_ups.append(give_up)
        self._complete = False
        if isinstance(give_up.action, Post):
            self._stopped = True
        else:
            self._abandoned.add(give_up.action.slot)

    # --- results in ------------------------------------------------------------------

    def report(self, result: Result, now: float) -> None:
        """What became of the action :meth:`poll` handed out last."""
        action = self._out
        if action is None:
            raise RuntimeError(f"report({result}) with no action out")
        posted_without_id = isinstance(result, NotModified) or (
            isinstance(result, Ok) and result.message_id is None
        )
        if isinstance(action, Post) and posted_without_id:
            raise ValueError(f"{result} for {action}: a post's Ok names the new message")
        self._out = None
        key = (type(action).__name__, action.slot)
        if isinstance(result, RateLimited):
            self._blocked_until = max(self._blocked_until, now + max(0.0, result.retry_after))
            if self._chat is not None:
                self._chat.hold(self._blocked_until)
        elif isinstance(result, Failed):
            self._forget(action)
            attempts = self._failures.get(key, 0) + 1
            self._failures[key] = attempts
            if attempts < self.limits.max_attempts:
                delay = self.limits.backoff * 2 ** (attempts - 1)
                self._backoff_until = now + min(delay, self.limits.max_backoff)
            else:
                del self._failures[key]
                give_up = GiveUp(action, attempts, result.reason)
                if self._out_in_final:
                    self._abandon(give_up)
                else:
                    # A preview: stop previewing; the final text is still attempted.
                    self._give_ups.append(give_up)
                    self._previews_off = not self._final
        else:
            self._failures.pop(key, None)
            self._carried_out(action, result)

    def _forget(self, action: Action) -> None:
        """A failed action may still have gone through: what it wrote is unknown."""
        if isinstance(action, Edit):
            self._unsure.add(action.slot)
        elif isinstance(action, Draft):
            self._draft = None

    def _carried_out(self, action: Action, result: Ok | NotModified) -> None:
        if isinstance(action, Post):
            assert isinstance(result, Ok) and result.message_id is not None
            self._messages[action.slot] = Posted(result.message_id, action.text)
            self._draft = None  # a real message makes a draft vanish
        elif isinstance(action, Edit):
            self._messages[action.slot] = Posted(action.message_id, action.text)
            self._unsure.discard(action.slot)
        elif isinstance(action, Draft):
            self._draft = (action.slot, action.text)
        else:
            self._messages.pop(action.slot, None)
            self._unsure.discard(action.slot)
