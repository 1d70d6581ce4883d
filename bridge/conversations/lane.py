"""One conversation's lane: claim, take, run, complete, until nothing waits.

Split from :mod:`.dispatcher` so each file holds one thing: the dispatcher
admits messages and routes events; a lane runs one conversation's turns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from agentproc import wire
from bridge.store.errors import LeaseLost
from bridge.store.records import (
    TURN_COMPLETED,
    TURN_PARTIAL,
    TURN_PERMISSION,
    Conversation,
    Event,
)
from bridge.store.session_rules import session_to_resume, status_of
from bridge.turn.machine import EXIT_CANCELLED, TurnResult
from bridge.turn.profile import Profile
from bridge.turn.request import TurnRequest
from bridge.turn.runner import PermissionAnswer, run_request

from . import policies
from .approvals import DEADLINE, SESSION, decision_of
from .jobs import Job
from .partials import PartialWriter

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

__all__ = ["outcome_of", "run_lane"]

log = logging.getLogger("bridge.conversations")

#: How long a lane waits before it tries again to claim a conversation
#: another bridge holds (it is woken sooner when that bridge's turn ends).
CLAIM_RETRY_SECS = 1.0
#: How long a lane waits after a store error before it tries again.
STORE_RETRY_SECS = 1.0
#: Pauses between attempts to store a turn's end while the store fails
#: (each multiplied by the attempt's number).
COMPLETE_RETRY_SECS = (0.1, 0.5, 1.0)


async def run_lane(d: Dispatcher, cid: str) -> None:
    """Run the conversation's waiting messages; return when none is left."""
    while True:
        wake = d._lanes[cid] = anyio.Event()
        held = False
        try:
            held = await _run_turns(d, cid, wake)
        except Exception as exc:  # a store failure: say so, wait, try again
            d.store_errors += 1
            log.warning(
                "conversation %s: %s; trying again in %g s",
                cid,
                exc,
                STORE_RETRY_SECS,
                exc_info=True,
                extra={"conversation": cid},
            )
            with anyio.move_on_after(STORE_RETRY_SECS):
                await wake.wait()
            wake.set()
        finally:
            if held:
                with anyio.CancelScope(shield=True):
                    try:
                        await d.store.release(cid, d.owner)
                    except Exception as exc:
                        d.store_errors += 1
                        log.warning(
                            "conversation %s: cannot release its lease: %s",
                            cid,
                            exc,
                            extra={"conversation": cid},
                        )
        # Nothing awaits between this check and the lane's end, so a message
        # that arrived while the lease was being given up is never missed.
        if not wake.is_set() or d._closing:
            return


async def _run_turns(d: Dispatcher, cid: str, wake: anyio.Event) -> bool:
    """Claim and run turns while messages wait; returns whether the lease was taken."""
    held = False
    while not d._closing:
        claim = await d.store.claim(cid, d.owner, lease_secs=d._lease_secs)
        if claim is None:  # another bridge runs this conversation now
            with anyio.move_on_after(CLAIM_RETRY_SECS):
                await wake.wait()
            wake.set()  # run_lane comes back with a fresh wake-up and claims again
            return held
        held = True
        d.hub.publish(claim.closed)
        before = claim.conversation
        caps = d._caps(before.key.route)
        batch = policies.next_batch(caps.policy, claim.pending)
        if not batch:
            return held
        text, files = policies.merge(batch)
        conv, queued = await d.store.take(
            cid, d.owner, [m.id for m in batch], text=text, attachments=files
        )
        d.hub.publish([queued])
        if await _run_job(d, before, conv, queued):
            return False  # the lease went with the turn's completion
    return held


async def _run_job(d: Dispatcher, before: Conversation, conv: Conversation, queued: Event) -> bool:
    """Run the turn and store its end; returns whether the lease was given
    up with it (nothing this process knows of was waiting)."""
    job = Job(conv.id, queued.turn, conv.reset_epoch, consumed=conv.consumed)
    d._jobs[conv.id] = job
    result: TurnResult | None = None
    released = False
    try:
        result = await _execute(d, before, conv, queued, job)
    finally:
        # However the turn ended (even cancelled from outside), it is stored.
        with anyio.CancelScope(shield=True):
            if result is None:
                result = _not_run(job.reason or NOT_RUN_STOPPED)
            released = await _complete(d, job, result)
    return released


NOT_RUN_STOPPED = "the bridge was stopped"


async def _complete(d: Dispatcher, job: Job, result: TurnResult) -> bool:
    cid = job.conversation
    captured = result.session_id if result.session_captured else None
    # Messages written by other processes that this one has not read yet are
    # not missed: reading them back wakes a lane (Dispatcher._observe).
    release = d._closing or d.hub.last_message(cid) <= job.consumed
    outcome = outcome_of(result)
    try:
        for attempt, pause in enumerate((*COMPLETE_RETRY_SECS, None)):
            try:
                _, completed = await d.store.complete(
                    cid,
                    d.owner,
                    job.turn,
                    outcome,
                    captured_session=captured,
                    epoch=job.epoch,
                    release=release,
                )
            except Exception as exc:
                if pause is None or isinstance(exc, LeaseLost):
                    raise
                d.store_errors += 1
                log.warning(
                    "conversation %s: turn %d not stored yet (%s)",
                    cid,
                    job.turn,
                    exc,
                    extra={"conversation": cid, "turn": job.turn},
                )
                await anyio.sleep(pause * (attempt + 1))
            else:
                d.hub.publish([completed])
                log.info(
                    "conversation %s: turn %d ended: %s in %d ms",
                    cid,
                    job.turn,
                    outcome["status"],
                    outcome["duration_ms"],
                    extra={"conversation": cid, "turn": job.turn},
                )
                return release
        return False  # not reached: the last attempt returns or raises
    except Exception as exc:
        # The answer is not lost for the readers here: they get the turn's
        # end with a warning. The store still shows the turn open; whoever
        # opens the conversation next closes it as abandoned.
        log.error(
            "conversation %s: turn %d could not be stored: %s",
            cid,
            job.turn,
            exc,
            extra={"conversation": cid, "turn": job.turn},
        )
        warning = f"the turn could not be saved in the store: {exc}"
        outcome["warnings"] = [*outcome["warnings"], warning]
        d.hub.unsaved(
            Event(cid, d.hub.known(cid), TURN_COMPLETED, job.turn, time.time(), outcome, live=True)
        )
        return False
    finally:
        d.hub.live_end(cid)
        job.fire("stored")
        d._jobs.pop(cid, None)


async def _execute(
    d: Dispatcher, before: Conversation, conv: Conversation, queued: Event, job: Job
) -> TurnResult:
    limiter = d._limiter
    assert limiter is not None
    if not await _acquire(limiter, job):
        return _not_run(job.reason)
    try:
        if not job.fire("slot"):
            return _not_run(job.reason)
        # Idle time counts from the conversation's last activity, not from this take.
        profile = d._profile(conv.key.route)
        idle = profile.session_idle_secs or d._idle_secs
        session_id = session_to_resume(conv, d._clock(), idle, last_active=before.updated_at)
        started = await d.store.start(conv.id, d.owner, job.turn, session_id)
        d.hub.publish([started])
        log.info(
            "conversation %s: turn %d started%s",
            conv.id,
            job.turn,
            f" (resuming session {session_id})" if session_id else "",
            extra={"conversation": conv.id, "turn": job.turn},
        )
        live_chunk = d.hub.live_start(conv.id, job.turn, started.id)
        if not job.fire("spawned"):
            return _not_run(job.reason)
        data = queued.data
        users = list(data.get("from_users", ()))
        files = [wire.Attachment.from_dict(a) for a in data.get("attachments", ())]
        writer = PartialWriter(_partial_writer(d, job))

        async with anyio.create_task_group() as tg:
            writing = False

            add = writer.add

            def on_partial(text: str) -> None:
                nonlocal writing
                live_chunk(text)
                add(text)
                if not writing:  # a turn that streams nothing costs no task
                    writing = True
                    tg.start_soon(writer.run)

            # Shielded: a cancelled host reaches the agent through job.cancel,
            # so the turn still ends with a result (and its session id).
            with anyio.CancelScope(shield=True):
                result = await run_request(
                    profile,
                    TurnRequest(
                        str(data.get("text", "")),
                        session_id=session_id,
                        session_name=conv.session_name,
                        from_user=users[0] if users else "",
                        attachments=tuple(files),
                    ),
                    on_partial=on_partial,
                    on_permission=_asker(d, job, writer, _deadline(profile), users),
                    cancel=job.cancel,
                )
                job.fire("exited")
                await writer.close()
            tg.cancel_scope.cancel()
        return result
    finally:
        limiter.release_on_behalf_of(job)


async def _acquire(limiter: anyio.CapacityLimiter, job: Job) -> bool:
    """A slot under the bridge-wide cap, unless the job is cancelled first
    (a cancel ends the wait through the job's ``slot_wait`` scope: no task
    per waiting turn)."""
    try:
        limiter.acquire_on_behalf_of_nowait(job)
        return True
    except anyio.WouldBlock:
        pass
    if job.cancel.is_set():
        return False
    acquired = False
    with anyio.CancelScope() as job.slot_wait:
        await limiter.acquire_on_behalf_of(job)
        acquired = True
    job.slot_wait = None
    if acquired and job.cancel.is_set():
        limiter.release_on_behalf_of(job)
        return False
    return acquired


def _partial_writer(d: Dispatcher, job: Job) -> Any:
    async def write(text: str, offset: int) -> Event:
        event = await d.store.append(
            job.conversation, d.owner, job.turn, TURN_PARTIAL, {"text": text, "offset": offset}
        )
        d.hub.publish([event])
        return event

    return write


def _deadline(profile: Profile) -> Callable[[], float | None]:
    """When a permission request asked now will be denied unanswered (wall
    clock): the profile's permission timeout, never past the turn's own."""
    turn_ends = time.time() + profile.timeout_secs if profile.timeout_secs else None

    def deadline() -> float | None:
        wait = profile.permission_timeout_secs
        ends = [t for t in (turn_ends, time.time() + wait if wait else None) if t is not None]
        return min(ends) if ends else None

    return deadline


def _asker(
    d: Dispatcher,
    job: Job,
    writer: PartialWriter,
    deadline: Callable[[], float | None],
    users: list[str],
) -> Any:
    async def ask(request: wire.PermissionRequest) -> PermissionAnswer:
        await writer.flush()
        data = {
            "tool": request.tool,
            "input": request.input,
            "description": request.description,
            "deadline": deadline(),
            "request_id": request.id,
            "tool_use_id": request.tool_use_id,
            # Who may answer, besides an admin: the people whose messages
            # the turn took.
            "from_users": users,
        }
        event = await d.store.append(job.conversation, d.owner, job.turn, TURN_PERMISSION, data)
        waiter = d._approvals.expect(job.conversation, event.id)
        d.hub.publish([event])
        if d._approvals.allowed(job.conversation, request.tool):
            # Allowed for the rest of the conversation: answered at once, in
            # the log like any answer.
            await d.answer(
                job.conversation,
                event.id,
                allow=True,
                scope="session",
                message="allowed for the rest of this conversation",
                by=SESSION,
            )
        elif d._on_permission is not None and d._tg is not None:
            d._tg.start_soon(_ask_handler, d, job, event)
        try:
            await waiter.done.wait()
            assert waiter.answer is not None
            return decision_of(waiter.answer)
        finally:
            d._approvals.forget(job.conversation, event.id)
            if waiter.answer is None:
                with anyio.CancelScope(shield=True):
                    await d.answer(job.conversation, event.id, allow=False, by=DEADLINE)

    return ask


async def _ask_handler(d: Dispatcher, job: Job, request: Event) -> None:
    """The dispatcher's own permission handler answers like anyone else: first answer wins."""
    assert d._on_permission is not None
    conv = await d.store.get(job.conversation)
    if conv is None:
        return
    try:
        answer = d._on_permission(conv, job.turn, request)
        if hasattr(answer, "__await__"):
            answer = await answer  # type: ignore[misc]
    except Exception as exc:
        answer = wire.PermissionDecision(False, None, f"the permission handler failed: {exc}")
    if isinstance(answer, wire.PermissionDecision):
        allow, message = answer.allow, answer.message
    else:
        allow, message = bool(answer), ""
    await d.answer(job.conversation, request.id, allow=allow, message=message, by="handler")


def outcome_of(result: TurnResult) -> dict[str, Any]:
    """A turn's result as the fields of its ``turn.completed`` event."""
    return {
        "status": status_of(result.exit_code, result.timed_out, result.cancelled),
        "reply": result.text,
        "session_id": result.session_id,
        "exit_code": result.exit_code,
        "error": result.error,
        "hint": result.hint,
        "warnings": list(result.warnings),
        "timed_out": result.timed_out,
        "duration_ms": result.duration_ms,
    }


def _not_run(reason: str) -> TurnResult:
    return TurnResult(
        reply="",
        session_id="",
        error=f"not run: {reason or 'cancelled before it started'}",
        exit_code=EXIT_CANCELLED,
        cancelled=True,
    )
