"""One turn without an event loop: what a one-shot ``agentproc run`` uses.

:func:`run_plan_blocking` is :func:`bridge.turn.runner.run_plan` for a caller that
has nothing else to do while the agent runs: the same turn state machine and
the same result, with the process driven by :mod:`bridge.turn.process_sync`. It
serves turns without a permission channel (answering permission requests
while reading output is the event loop's job); :func:`blocking_ok` says
whether a plan qualifies. SIGINT and SIGTERM stop the agent (SIGTERM, grace,
SIGKILL to its group) and end the turn as cancelled, as Ctrl-C does in the
event-loop runner.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from .errors import LaunchError
from .launch import LaunchPlan, build_plan, preflight
from .machine import Partial, PermissionRequested, Turn, TurnResult, failed_result
from .process_sync import BlockingProcess
from .request import TurnRequest

__all__ = [
    "blocking_ok",
    "finish_result",
    "run_plan_blocking",
    "run_request_blocking",
    "run_turn_blocking",
    "turn_for_plan",
]

#: Said when an agent without a permission channel asks anyway (as the event-loop runner says).
NO_CHANNEL = (
    "the agent asked for permission but the profile has no permission channel "
    "(set `permission: true`); its stdin is at EOF, so it should deny itself"
)


def blocking_ok(plan: LaunchPlan) -> bool:
    """Whether ``plan`` can run without an event loop (no permission channel)."""
    return not plan.permission and not plan.stdin_open


#: The keywords :func:`run_turn_blocking` passes on to the request (``extra_env``
#: becomes its ``env``) and, for ``environ``, to the plan.
_PLAN_OPTIONS = frozenset(
    {"session_name", "from_user", "attachments", "cwd", "extra_env", "timeout", "streaming"}
)


def run_turn_blocking(
    profile: Any,
    message: str,
    *,
    session_id: str = "",
    on_partial: Callable[[str], object] | None = None,
    on_signal: Callable[[int], None] | None = None,
    **plan_options: Any,
) -> TurnResult:
    """:func:`bridge.run_turn` on this thread, for a profile without a permission
    channel. ``plan_options`` are the inputs of a
    :class:`~bridge.turn.request.TurnRequest` (``session_name``, ``from_user``,
    ``attachments``, ``cwd``, ``extra_env`` for its ``env``, ``timeout``,
    ``streaming``) and ``environ``; this is :func:`run_request_blocking` with
    the request written out as keywords."""
    environ = plan_options.pop("environ", None)
    for name in plan_options:
        if name not in _PLAN_OPTIONS:
            raise TypeError(f"run_turn_blocking() got an unexpected keyword argument {name!r}")
    if "extra_env" in plan_options:
        plan_options["env"] = plan_options.pop("extra_env")
    request = TurnRequest(message, session_id=session_id, **plan_options)
    return run_request_blocking(
        profile, request, on_partial=on_partial, on_signal=on_signal, environ=environ
    )


def run_request_blocking(
    profile: Any,
    request: TurnRequest,
    *,
    on_partial: Callable[[str], object] | None = None,
    on_signal: Callable[[int], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> TurnResult:
    """:func:`bridge.run_request` on this thread, for a profile without a
    permission channel (see :func:`run_plan_blocking` for ``on_signal``)."""
    started = time.monotonic()
    try:
        plan = build_plan(profile, request, environ=environ)
        preflight(plan)
    except LaunchError as exc:
        return failed_result(
            exc.detail, exc.exit_code, session_id=request.session_id, hint=exc.hint
        )
    return run_plan_blocking(
        plan,
        session_id=request.session_id,
        on_partial=on_partial,
        on_signal=on_signal,
        started=started,
    )


def turn_for_plan(plan: LaunchPlan, session_id: str = "") -> Turn:
    """The turn state machine set up as ``plan`` says; both runners start here."""
    return Turn(
        streaming=plan.streaming,
        max_reply_chars=plan.max_reply_chars,
        truncation_suffix=plan.truncation_suffix,
        max_line_bytes=plan.max_line_bytes,
        session_id=session_id,
        include_stderr_in_reply=plan.include_stderr_in_reply,
    )


def run_plan_blocking(
    plan: LaunchPlan,
    *,
    session_id: str = "",
    on_partial: Callable[[str], object] | None = None,
    started: float | None = None,
    stop_signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
    on_signal: Callable[[int], None] | None = None,
) -> TurnResult:
    """Run a launch plan on this thread and return its result; never raises for a
    failed turn. ``on_partial`` gets each streamed chunk. While the agent runs,
    ``stop_signals`` cancel the turn (only on the main thread; elsewhere they
    keep their handlers): the first stops the agent gently (SIGTERM, then
    SIGKILL after ``kill_grace_secs``), a second kills it at once.
    ``on_signal(n)`` is told of the n-th such signal (to say what happens)."""
    if started is None:
        started = time.monotonic()
    if not blocking_ok(plan):
        raise ValueError("a plan with a permission channel needs the event-loop runner")
    turn = turn_for_plan(plan, session_id)
    try:
        proc = BlockingProcess.spawn(plan)
    except LaunchError as exc:
        return failed_result(exc.detail, exc.exit_code, session_id=session_id, hint=exc.hint)
    warnings = list(plan.warnings)
    callback_errors: list[str] = []

    def deliver(events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, PermissionRequested):
                if NO_CHANNEL not in warnings:
                    warnings.append(NO_CHANNEL)
            elif on_partial is not None and not callback_errors and isinstance(ev, Partial):
                try:
                    on_partial(ev.text)
                except Exception as exc:
                    callback_errors.append(
                        f"the bridge's on_partial callback failed: {type(exc).__name__}: {exc}"
                    )
                    proc.stop()

    def sink(data: bytes) -> None:
        events = turn.feed(data)
        if events:
            deliver(events)

    received = 0

    def stop() -> None:
        nonlocal received
        received += 1
        proc.stop()
        if on_signal is not None:
            on_signal(received)

    restore = _catch(stop_signals, stop)
    try:
        exit_info = proc.run(sink)
    finally:
        restore()
    deliver(turn.end_of_output())
    result = turn.finish(exit_info)
    if received > 1 and result.cancelled:
        result = dataclasses.replace(result, error="cancelled: the agent was killed")
    return finish_result(result, started, warnings, callback_errors)


def finish_result(
    result: TurnResult, started: float, warnings: list[str], callback_errors: list[str]
) -> TurnResult:
    """The turn's result as both runners give it: its duration, the plan's and
    the runner's warnings before the turn's own, and a failed callback as the
    turn's error (the bridge's fault, exit code 1)."""
    changes: dict[str, Any] = {"duration_ms": int((time.monotonic() - started) * 1000)}
    if warnings:
        changes["warnings"] = warnings + result.warnings
    if callback_errors:
        changes["error"] = callback_errors[0]
        changes["cancelled"] = False
        changes["exit_code"] = 1
    return dataclasses.replace(result, **changes)


def _catch(signals: tuple[int, ...], stop: Callable[[], None]) -> Callable[[], None]:
    """Route ``signals`` to ``stop`` until the returned function is called."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for sig in signals:
        previous[sig] = signal.signal(sig, lambda _s, _f: stop())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
