"""``agentproc batch``: run a file of messages through one profile.

Only click is imported here; the library (:mod:`bridge.channels.batch`, anyio, pydantic)
is imported when the command runs, so ``agentproc --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, NoReturn, cast

import click

if TYPE_CHECKING:
    from bridge.channels.batch import BatchItem, BatchRun, InputFormat, Progress
    from bridge.turn.profile import Profile


@click.command(short_help="Run a file of messages through PROFILE; one JSON line per item.")
@click.argument("profile")
@click.argument("input_path", metavar="INPUT")
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Items run at the same time.",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Append the result lines to FILE (created if missing) instead of stdout.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECS",
    help="Seconds per item (overrides the profile's timeout_secs).",
)
@click.option("--resume", is_flag=True, help="Skip the ids already in --output FILE.")
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["auto", "text", "jsonl"]),
    default="auto",
    show_default=True,
    help="How to read INPUT; auto: JSONL when its first non-blank line starts with '{'.",
)
def batch(
    profile: str,
    input_path: str,
    concurrency: int,
    output: str | None,
    timeout: float | None,
    resume: bool,
    input_format: str,
) -> None:
    """Run every message of INPUT through PROFILE (a profile file or folder, a
    bundled profile's name, or bundled:NAME) and write one JSON line per item.

    \b
    INPUT (a file, or - for stdin) is either
      plain text: one message per non-blank line; the id is the line number
      JSONL: one object per line, {"id": ..., "message": ...} with optional
        "session_id" and "attachments" (a list of {"type", "url"}); the id
        (a string or a number, unique) defaults to the line number
    Every bad line is reported (exit 2) before anything runs.

    \b
    Each result is written as soon as its item ends, as one line:
      {"id", "index", "reply", "session_id", "error", "exit_code",
       "timed_out", "duration_ms"}
    index is the item's 0-based position in INPUT. Items run with
    AGENT_STREAMING=0 (no one watches them stream), so the reply is complete.
    A failing or hanging item never stops the others.

    \b
    --output FILE is appended to; a torn last line left there by a killed
    run is cut off. --resume skips the ids already in FILE (failed ones too:
    delete their lines to run them again).
    Ctrl-C (or SIGTERM) starts no more items and stops the running agents;
    no result is written for them, so --resume runs them again. A second
    Ctrl-C kills them at once.

    \b
    A progress bar is drawn on stderr when it is a terminal; a summary ends
    the run. Exit status: 0 every item succeeded (skipped ones included),
    1 some failed or did not run, 2 usage, profile or input error,
    130 interrupted.
    """
    if resume and output in (None, "-"):
        raise click.UsageError("--resume needs --output FILE: it reads the ids already done there")

    from bridge.channels.batch import BatchRun, Progress, open_output, read_input, summarize
    from bridge.turn.bundled import load_profile_arg

    prof, cwd = load_profile_arg(profile)
    if input_path == "-" and sys.stdin.isatty():
        click.echo("batch: reading messages from the terminal; end with Ctrl-D", err=True)
    parsed = read_input(input_path, fmt=cast("InputFormat", input_format))
    for warning in parsed.warnings:
        click.echo(f"warning: {warning}", err=True)
    items = parsed.items
    _check_not_same_file(input_path, output)
    _preflight(prof, items[0], timeout, cwd)

    opened = open_output(output, resume=resume)
    for warning in opened.warnings:
        click.echo(f"warning: {warning}", err=True)
    todo = [it for it in items if it.key not in opened.done]

    progress = Progress(sys.stderr, len(todo))
    runner = BatchRun(
        prof,
        todo,
        opened.writer,
        concurrency=concurrency,
        timeout=timeout,
        cwd=cwd,
        progress=progress,
        # Result lines and the bar share the terminal: wipe the bar before each line.
        clear_progress_before_write=output in (None, "-") and os.isatty(1),
    )
    started = time.monotonic()
    interrupted = False

    async def go() -> None:
        nonlocal interrupted
        import signal

        import anyio
        import anyio.abc

        stop = anyio.Event()
        run_scope = anyio.CancelScope()

        async def watch_signals(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            # The first Ctrl-C (or SIGTERM) starts no new item and stops the running
            # agents gently (SIGTERM, grace, SIGKILL); a second one kills them now.
            nonlocal interrupted
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for _ in signals:
                    if not interrupted:
                        interrupted = True
                        stop.set()
                        _say(
                            progress,
                            f"batch: stopping: no new items, cancelling {runner.running} "
                            "running (again to kill now)",
                        )
                    else:
                        _say(progress, "batch: killing the running agents")
                        run_scope.cancel()

        async with anyio.create_task_group() as tg:
            await tg.start(watch_signals)
            with run_scope:
                await runner.run(stop)
            tg.cancel_scope.cancel()

    import anyio

    try:
        anyio.run(go)
    finally:
        opened.writer.close()
        progress.clear()
    summary = summarize(
        items, opened.done, runner, interrupted=interrupted, seconds=time.monotonic() - started
    )
    _finish(runner, summary.line(), summary.exit_code, opened.writer.label)


def _say(progress: Progress, text: str) -> None:
    progress.clear()
    click.echo(text, err=True)


def _check_not_same_file(input_path: str, output: str | None) -> None:
    if input_path == "-" or output in (None, "-"):
        return
    assert output is not None
    try:
        same = os.path.samefile(input_path, output)
    except OSError:
        return
    if same:
        raise click.UsageError("--output is the INPUT file; give another file for the results")


def _preflight(prof: Profile, item: BatchItem, timeout: float | None, cwd: str | None) -> None:
    """Fail before anything runs when the agent cannot start here at all
    (command not found, not executable, working directory missing)."""
    from bridge.turn.errors import LaunchError
    from bridge.turn.launch import build_plan, preflight

    try:
        plan = build_plan(prof, item.request(timeout=timeout, cwd=cwd))
    except LaunchError:
        return  # a problem of this item's own input: it fails alone when it runs
    try:
        preflight(plan)
    except LaunchError as exc:
        raise LaunchError(
            f"the profile cannot start its agent here: {exc.detail}; nothing was run",
            hint=exc.hint,
            exit_code=2,
        ) from exc


def _finish(runner: BatchRun, summary: str, code: int, label: str) -> NoReturn:
    import errno

    from bridge.channels.batch import id_key

    for failure in runner.failures:
        click.echo(
            f"failed: {id_key(failure.id)}: exit {failure.exit_code}: {failure.error}", err=True
        )
    more = runner.failed - len(runner.failures)
    if more > 0:
        click.echo(f"failed: ... and {more} more (see their result lines)", err=True)
    exc = runner.output_error
    if exc is not None:
        click.echo(f"error: cannot write the results to {label}: {exc.strerror or exc}", err=True)
        code = 141 if exc.errno == errno.EPIPE else 1
    click.echo(summary, err=True)
    sys.exit(code)
