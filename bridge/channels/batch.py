"""Batch runs: many messages through one profile, one JSON result line per item.

The library half of ``agentproc batch`` (the click command is in
:mod:`bridge.cli.batch`), in three modules:

- :mod:`bridge.channels.batch_input`: :func:`parse_input` / :func:`read_input`
  turn an input file into :class:`BatchItem` objects, or raise
  :class:`BatchInputError` listing every bad line at once, before anything runs.
- :mod:`bridge.channels.batch_output`: :func:`open_output` opens the results
  file for appending, cuts off a torn last line, and (for ``--resume``) reads
  which ids are already done.
- here: :class:`BatchRun` runs the items with a concurrency cap, writes each
  result as one line as soon as it is known, and keeps the counts for the
  summary; :class:`Progress` draws the one-line progress bar on a terminal.

The names of all three are importable from this module.

Input formats: JSONL when the first non-blank line starts with ``{`` (each line
``{"id", "message", "session_id"?, "attachments"?}``), otherwise plain text, one
message per non-blank line with its 1-based line number as id.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from .batch_input import (
    INPUT_KEYS,
    MAX_PROBLEMS,
    BatchItem,
    InputFormat,
    ItemId,
    ParsedInput,
    id_key,
    parse_input,
    read_input,
)
from .batch_output import RESULT_KEYS, OpenedOutput, ResultWriter, open_output, result_record

if TYPE_CHECKING:
    import anyio

    from bridge.turn.machine import TurnResult
    from bridge.turn.profile import Profile

__all__ = [
    "DEFAULT_CONCURRENCY",
    "INPUT_KEYS",
    "MAX_FAILURES_SHOWN",
    "MAX_PROBLEMS",
    "RESULT_KEYS",
    "BatchItem",
    "BatchRun",
    "Failure",
    "InputFormat",
    "ItemId",
    "OpenedOutput",
    "ParsedInput",
    "Progress",
    "ResultWriter",
    "Summary",
    "id_key",
    "open_output",
    "parse_input",
    "read_input",
    "result_record",
    "summarize",
]

#: Failed items named in the summary; the rest are counted.
MAX_FAILURES_SHOWN = 10

DEFAULT_CONCURRENCY = 4


# --- progress -------------------------------------------------------------------------


class Progress:
    """A one-line progress bar, redrawn in place with ``\\r`` on a terminal.
    Disabled (it draws nothing) when ``stream`` is not a terminal."""

    WIDTH = 24
    MIN_INTERVAL = 0.1

    def __init__(self, stream: IO[str], total: int, *, enabled: bool | None = None) -> None:
        self.stream = stream
        self.total = total
        self.enabled = stream.isatty() if enabled is None else enabled
        self.ok = 0
        self.failed = 0
        self.running = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._shown = False

    def line(self) -> str:
        done = self.ok + self.failed
        filled = self.WIDTH if not self.total else self.WIDTH * done // self.total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        secs = int(time.monotonic() - self.started)
        return (
            f"[{bar}] {done}/{self.total}  ok {self.ok}  failed {self.failed}  "
            f"running {self.running}  {secs // 60}:{secs % 60:02d}"
        )

    def draw(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.MIN_INTERVAL:
            return
        self._last = now
        self.stream.write("\r" + self.line() + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Wipe the bar (before other text goes to the same terminal)."""
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
            self._last = 0.0


# --- running --------------------------------------------------------------------------


@dataclass(slots=True)
class Failure:
    id: ItemId
    exit_code: int
    error: str


class BatchRun:
    """Runs ``items`` through ``profile``, at most ``concurrency`` at a time.

    Each result is written by ``writer`` as soon as its item ends. Setting the
    ``stop`` event given to :meth:`run` starts no more items and cancels the
    running ones (their agents are stopped; no result is written for an item
    that was cancelled, so ``--resume`` runs it again). Cancelling the caller's
    scope kills the running agents at once. The counts stay on the object, so
    they are there for the summary whichever way the run ended.
    """

    def __init__(
        self,
        profile: Profile,
        items: Sequence[BatchItem],
        writer: ResultWriter,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float | None = None,
        cwd: str | None = None,
        progress: Progress | None = None,
        clear_progress_before_write: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.profile = profile
        self.items = list(items)
        self.writer = writer
        self.concurrency = concurrency
        self.timeout = timeout
        self.cwd = cwd
        self.progress = progress
        self._clear_before_write = clear_progress_before_write
        self.ok = 0
        self.failed = 0
        self.running = 0
        self.failures: list[Failure] = []
        self.output_error: OSError | None = None

    async def run(self, stop: anyio.Event) -> None:
        import anyio

        queue = iter(self.items)
        async with anyio.create_task_group() as tg:
            if self.progress is not None and self.progress.enabled:
                tg.start_soon(self._tick)
            async with anyio.create_task_group() as workers:
                for _ in range(min(self.concurrency, len(self.items))):
                    workers.start_soon(self._worker, queue, stop)
            tg.cancel_scope.cancel()
        self._draw(force=True)

    async def _tick(self) -> None:
        import anyio

        while True:
            self._draw(force=True)
            await anyio.sleep(0.5)

    def _draw(self, *, force: bool = False) -> None:
        if self.progress is not None:
            self.progress.ok, self.progress.failed = self.ok, self.failed
            self.progress.running = self.running
            self.progress.draw(force=force)

    async def _worker(self, queue: Iterator[BatchItem], stop: anyio.Event) -> None:
        from bridge.turn.runner import run_request

        while not stop.is_set():
            # Handing out the next item is synchronous: no two workers get the same one.
            item = next(queue, None)
            if item is None:
                return
            self.running += 1
            self._draw()
            try:
                request = item.request(timeout=self.timeout, cwd=self.cwd)
                result = await run_request(self.profile, request, cancel=stop)
            finally:
                self.running -= 1
            if result.cancelled:
                self._draw()
                continue  # stopped by the user: not a result; --resume runs it again
            self._record(item, result, stop)

    def _record(self, item: BatchItem, result: TurnResult, stop: anyio.Event) -> None:
        if self.output_error is not None:
            return
        if self._clear_before_write and self.progress is not None:
            self.progress.clear()
        try:
            self.writer.write(result_record(item, result))
        except OSError as exc:
            self.output_error = exc
            stop.set()
            return
        if result.error is None and result.exit_code == 0:
            self.ok += 1
        else:
            self.failed += 1
            if len(self.failures) < MAX_FAILURES_SHOWN:
                first = (result.error or f"exit code {result.exit_code}").strip().splitlines()
                text = first[0] if first else f"exit code {result.exit_code}"
                self.failures.append(Failure(item.id, result.exit_code, text[:200]))
        self._draw(force=self._clear_before_write)


@dataclass(frozen=True, slots=True)
class Summary:
    """The counts of a whole batch: ``total`` items in the input, of which
    ``skipped`` were already in the output (--resume; ``skipped_failed`` of
    them had failed). ``ok`` and ``failed`` include the skipped ones."""

    total: int
    ok: int
    failed: int
    skipped: int = 0
    skipped_failed: int = 0
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def not_run(self) -> int:
        return self.total - self.ok - self.failed

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 0 if self.ok == self.total else 1

    def line(self) -> str:
        text = (
            f"batch: {self.total} item{'s' if self.total != 1 else ''}: {self.ok} ok, "
            f"{self.failed} failed, {self.not_run} not run"
        )
        if self.skipped:
            extra = f", {self.skipped_failed} of them failed" if self.skipped_failed else ""
            text += f" ({self.skipped} done before, skipped by --resume{extra})"
        if self.interrupted:
            text += "; interrupted, --resume runs the rest"
        return text + f" in {_seconds(self.seconds)}"


def _seconds(secs: float) -> str:
    if not math.isfinite(secs) or secs < 60:
        return f"{secs:.1f} s"
    mins, secs = divmod(int(secs), 60)
    return f"{mins} min {secs} s"


def summarize(
    items: Sequence[BatchItem],
    done: dict[str, bool],
    run: BatchRun,
    *,
    interrupted: bool,
    seconds: float,
) -> Summary:
    skipped = [done[it.key] for it in items if it.key in done]
    skipped_failed = skipped.count(False)
    return Summary(
        total=len(items),
        ok=run.ok + len(skipped) - skipped_failed,
        failed=run.failed + skipped_failed,
        skipped=len(skipped),
        skipped_failed=skipped_failed,
        interrupted=interrupted,
        seconds=seconds,
    )
