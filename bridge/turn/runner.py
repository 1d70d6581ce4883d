"""``run_turn()`` and ``run_request()``: a profile and a request in, a :class:`TurnResult` out.

The runner joins the layers below it: it expands the profile into a launch
plan, starts the process, feeds stdout to the turn state machine and turns the
events into callbacks (partials, permission requests). Nothing raises out of
``run_turn`` except the caller's own cancellation: every failure is a result
with an ``error`` and an exit code.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from agentproc import wire

from .errors import LaunchError
from .launch import LaunchPlan, build_plan, preflight
from .machine import (
    Event,
    Partial,
    PermissionRequested,
    ProcessExit,
    Turn,
    TurnResult,
    failed_result,
)
from .process import AgentProcess
from .request import TurnRequest
from .runner_sync import finish_result, turn_for_plan

if TYPE_CHECKING:
    from .profile import Profile
    from .profile_cache import ProfileView

PartialCallback = Callable[[str], Awaitable[None] | None]
EventCallback = Callable[[Event], Awaitable[None] | None]
PermissionAnswer = wire.PermissionDecision | bool | None
PermissionCallback = Callable[
    [wire.PermissionRequest], Awaitable[PermissionAnswer] | PermissionAnswer
]

NO_CHANNEL = (
    "the agent asked for permission but the profile has no permission channel "
    "(set `permission: true`); its stdin is at EOF, so it should deny itself"
)
NO_HANDLER = "no one to ask: the bridge has no permission handler, so the request is denied"


async def run_turn(
    profile: Profile | ProfileView,
    message: str,
    *,
    session_id: str = "",
    session_name: str = wire.DEFAULT_SESSION_NAME,
    from_user: str = "",
    attachments: Iterable[wire.Attachment] = (),
    on_partial: PartialCallback | None = None,
    on_permission: PermissionCallback | None = None,
    on_event: EventCallback | None = None,
    cancel: anyio.Event | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    streaming: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> TurnResult:
    """Run one turn of ``profile`` and return its result.

    The turn's inputs are those of :class:`~bridge.turn.request.TurnRequest`
    (``env``: extra environment variables, like ``--env``); this is
    :func:`run_request` with the request written out as keywords.
    ``on_partial`` gets each streamed chunk; ``on_permission`` answers the
    agent's permission requests (return a :class:`~agentproc.wire.PermissionDecision`
    or a bool); ``on_event`` sees every event of the turn. Callbacks may be plain
    or async functions. Setting ``cancel`` stops the agent (SIGTERM, grace,
    SIGKILL) and the turn ends as cancelled (exit code 130).
    """
    request = TurnRequest(
        message,
        session_id=session_id,
        session_name=session_name,
        from_user=from_user,
        attachments=attachments,
        cwd=cwd,
        env=env,
        timeout=timeout,
        streaming=streaming,
    )
    return await run_request(
        profile,
        request,
        on_partial=on_partial,
        on_permission=on_permission,
        on_event=on_event,
        cancel=cancel,
        environ=environ,
    )


async def run_request(
    profile: Profile | ProfileView,
    request: TurnRequest,
    *,
    on_partial: PartialCallback | None = None,
    on_permission: PermissionCallback | None = None,
    on_event: EventCallback | None = None,
    cancel: anyio.Event | None = None,
    environ: Mapping[str, str] | None = None,
) -> TurnResult:
    """Run the turn ``request`` with ``profile`` and return its result.

    The callbacks and ``cancel`` are :func:`run_turn`'s; ``environ`` is the
    bridge's environment the plan reads (``os.environ`` by default). Nothing
    raises except the caller's own cancellation: a turn that cannot start is
    a result with an ``error`` and an exit code.
    """
    started = time.monotonic()
    try:
        plan = build_plan(profile, request, environ=environ)
        preflight(plan)
    except LaunchError as exc:
        return failed_result(
            exc.detail, exc.exit_code, session_id=request.session_id, hint=exc.hint
        )
    return await run_plan(
        plan,
        session_id=request.session_id,
        on_partial=on_partial,
        on_permission=on_permission,
        on_event=on_event,
        cancel=cancel,
        started=started,
    )


async def run_plan(
    plan: LaunchPlan,
    *,
    session_id: str = "",
    on_partial: PartialCallback | None = None,
    on_permission: PermissionCallback | None = None,
    on_event: EventCallback | None = None,
    cancel: anyio.Event | None = None,
    started: float | None = None,
) -> TurnResult:
    """Run a launch plan that is already built (see :func:`run_turn`).

    ``started`` is the :func:`time.monotonic` time the turn began, when the
    caller did work (such as building the plan) before calling this.
    """
    if started is None:
        started = time.monotonic()
    turn = turn_for_plan(plan, session_id)
    warnings = list(plan.warnings)
    callback_errors: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        try:
            proc = await stack.enter_async_context(AgentProcess.start(plan))
        except LaunchError as exc:
            return failed_result(exc.detail, exc.exit_code, session_id=session_id, hint=exc.hint)
        exit_info = await _drive(
            proc, turn, warnings, callback_errors, on_partial, on_permission, on_event, cancel
        )
    return finish_result(turn.finish(exit_info), started, warnings, callback_errors)


async def _drive(
    proc: AgentProcess,
    turn: Turn,
    warnings: list[str],
    callback_errors: list[str],
    on_partial: PartialCallback | None,
    on_permission: PermissionCallback | None,
    on_event: EventCallback | None,
    cancel: anyio.Event | None,
) -> ProcessExit:
    """Run ``proc`` to the end, feeding its output to ``turn`` and the events to
    the callbacks; permission requests are answered and ``cancel`` watched while
    it runs. Warnings and failed callbacks are added to the lists given."""
    plan = proc.plan
    send_requests, requests = anyio.create_memory_object_stream[PermissionRequested](math.inf)

    def fail(what: str, exc: BaseException) -> None:
        callback_errors.append(f"the bridge's {what} callback failed: {type(exc).__name__}: {exc}")
        proc.stop()

    partial_cb = _adapt(on_partial)
    event_cb = _adapt(on_event)
    needs_async = bool(partial_cb and partial_cb[1]) or bool(event_cb and event_cb[1])

    async def deliver(events: list[Event]) -> None:
        """The callbacks for each event, awaited in order; the first failure stops the agent."""
        for ev in events:
            if callback_errors:
                break
            try:
                if event_cb is not None:
                    await _call(event_cb, ev)
                if partial_cb is not None and isinstance(ev, Partial):
                    await _call(partial_cb, ev.text)
            except Exception as exc:
                fail("on_event" if on_event else "on_partial", exc)

    def handle(events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, PermissionRequested):
                if plan.permission:
                    send_requests.send_nowait(ev)
                elif NO_CHANNEL not in warnings:
                    warnings.append(NO_CHANNEL)

    if not needs_async and on_event is None:
        # Fast path: plain on_partial (or none); no awaiting per chunk.
        partial_fn = partial_cb[0] if partial_cb else None

        def sink(data: bytes) -> Awaitable[None] | None:
            events = turn.feed(data)
            if not events:
                return None
            pending: list[Awaitable[Any]] = []
            if partial_fn is not None and not callback_errors:
                for ev in events:
                    if isinstance(ev, Partial):
                        try:
                            r = partial_fn(ev.text)
                        except Exception as exc:
                            fail("on_partial", exc)
                            break
                        if r is not None and inspect.isawaitable(r):
                            pending.append(r)
            handle(events)
            return _await_all(pending, fail) if pending else None

        on_stdout: Callable[[bytes], Awaitable[None] | None] = sink
    else:

        async def async_sink(data: bytes) -> None:
            events = turn.feed(data)
            await deliver(events)
            handle(events)

        on_stdout = async_sink

    if cancel is not None and cancel.is_set():
        proc.stop()
    if plan.permission or cancel is not None:
        async with anyio.create_task_group() as tg:
            if plan.permission:
                tg.start_soon(_answer_permissions, proc, plan, requests, on_permission)
            if cancel is not None:
                tg.start_soon(_watch_cancel, cancel, proc)
            exit_info = await proc.run(on_stdout)
            tg.cancel_scope.cancel()
    else:
        exit_info = await proc.run(on_stdout)
    send_requests.close()
    requests.close()
    tail_events = turn.end_of_output()
    handle(tail_events)
    # The last line, when it had no newline: the same callbacks as any other.
    await deliver(tail_events)
    return exit_info


async def _watch_cancel(cancel: anyio.Event, proc: AgentProcess) -> None:
    await cancel.wait()
    proc.stop()


async def _answer_permissions(
    proc: AgentProcess,
    plan: LaunchPlan,
    requests: MemoryObjectReceiveStream[PermissionRequested],
    on_permission: PermissionCallback | None,
) -> None:
    """Answer requests one at a time, so responses go out in request order."""
    async with requests:
        async for ev in requests:
            decision = await _decide(ev, proc, plan, on_permission)
            line = wire.permission_response_line(decision.to_response(ev.request.id)) + "\n"
            await proc.send(line.encode("utf-8"))


async def _decide(
    ev: PermissionRequested,
    proc: AgentProcess,
    plan: LaunchPlan,
    on_permission: PermissionCallback | None,
) -> wire.PermissionDecision:
    if ev.deny_reason is not None:
        return wire.PermissionDecision(False, None, ev.deny_reason)
    if on_permission is None:
        return wire.PermissionDecision(False, None, NO_HANDLER)
    wait = proc.deadline - anyio.current_time()
    if plan.permission_timeout_secs is not None:
        wait = min(wait, plan.permission_timeout_secs)
    answer: object = None
    with anyio.move_on_after(max(wait, 0)) as scope:
        try:
            answer = on_permission(ev.request)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:
            return wire.PermissionDecision(
                False, None, f"denied: the permission handler failed: {type(exc).__name__}: {exc}"
            )
    if scope.cancelled_caught:
        return wire.PermissionDecision(False, None, f"denied: no answer within {wait:.3g} s")
    if isinstance(answer, wire.PermissionDecision):
        return answer
    if isinstance(answer, bool):
        return wire.PermissionDecision(answer, None, "" if answer else "denied")
    return wire.PermissionDecision(False, None, "denied: the permission handler gave no answer")


def _adapt(fn: Callable[..., Any] | None) -> tuple[Callable[..., Any], bool] | None:
    """(fn, is_async) for a callback, or None."""
    if fn is None:
        return None
    return fn, inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


async def _await_all(
    pending: list[Awaitable[Any]], fail: Callable[[str, BaseException], None]
) -> None:
    for r in pending:
        try:
            await r
        except Exception as exc:
            fail("on_partial", exc)
            return


async def _call(cb: tuple[Callable[..., Any], bool], arg: object) -> None:
    result = cb[0](arg)
    if inspect.isawaitable(result):
        await result
