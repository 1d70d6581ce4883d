"""Batch runs: many messages through one profile, one JSON result line per item.

The library half of ``agentproc batch`` (the click command is in
:mod:`bridge.cli.batch`):

- :func:`parse_input` / :func:`read_input` turn an input file into
  :class:`BatchItem` objects, or raise :class:`BatchInputError` listing every
  bad line at once, before anything runs.
- :func:`open_output` opens the results file for appending, cuts off a torn
  last line, and (for ``--resume``) reads which ids are already done.
- :class:`BatchRun` runs the items with a concurrency cap, writes each result
  as one line as soon as it is known, and keeps the counts for the summary.
- :class:`Progress` draws the one-line progress bar on a terminal.

Input formats: JSONL when the first non-blank line starts with ``{`` (each line
``{"id", "message", "session_id"?, "attachments"?}``), otherwise plain text, one
message per non-blank line with its 1-based line number as id.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Literal

from agentproc.wire import Attachment
from bridge.turn.attachments import URL_EXAMPLES, url_problem
from bridge.turn.request import TurnRequest

from .errors import BatchInputError, BatchOutputError, UsageError

if TYPE_CHECKING:
    import anyio

    from bridge.turn.machine import TurnResult
    from bridge.turn.profile import Profile

ItemId = str | int | float
InputFormat = Literal["auto", "text", "jsonl"]

#: The keys of a JSONL input line that mean something; others are ignored (with a warning).
INPUT_KEYS = ("id", "message", "session_id", "attachments")
#: The keys of a result line, in the order they are written.
RESULT_KEYS = (
    "id",
    "index",
    "reply",
    "session_id",
    "error",
    "exit_code",
    "timed_out",
    "duration_ms",
)
#: Bad input lines listed in one error; the rest are counted.
MAX_PROBLEMS = 20
#: Failed items named in the summary; the rest are counted.
MAX_FAILURES_SHOWN = 10

DEFAULT_CONCURRENCY = 4


def id_key(value: ItemId) -> str:
    """The identity of an item id for duplicate checks and ``--resume``: a string
    is itself, a number its JSON text (so ``3`` and ``"3"`` are the same id)."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One message of a batch. ``id`` is kept as given in the input (a string or
    a number); ``index`` is the 0-based position among the items; ``line`` the
    1-based line of the input it came from."""

    id: ItemId
    index: int
    line: int
    message: str
    session_id: str = ""
    attachments: tuple[Attachment, ...] = ()

    @property
    def key(self) -> str:
        return id_key(self.id)

    def request(self, *, timeout: float | None = None, cwd: str | None = None) -> TurnRequest:
        """The turn of this item: its message, session and attachments, streaming
        off (a batch keeps only the final reply), with the run's ``--timeout``
        and ``--cwd``."""
        return TurnRequest(
            self.message,
            session_id=self.session_id,
            attachments=self.attachments,
            cwd=cwd,
            timeout=timeout,
            streaming=False,
        )


@dataclass(slots=True)
class ParsedInput:
    items: list[BatchItem]
    format: Literal["text", "jsonl"]
    warnings: list[str] = field(default_factory=list)


# --- input ----------------------------------------------------------------------------


def read_input(
    path: str, *, fmt: InputFormat = "auto", stdin: IO[bytes] | None = None
) -> ParsedInput:
    """Read and parse the input file ``path`` (``-`` reads ``stdin``, by default
    the process's standard input). Raises :class:`BatchInputError`."""
    label = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            raw = (stdin if stdin is not None else sys.stdin.buffer).read()
        else:
            with open(path, "rb") as fh:
                raw = fh.read()
    except OSError as exc:
        raise BatchInputError(
            f"cannot read the input {label}: {exc.strerror or exc}",
            hint="give a file with one message per line, or - for standard input",
        ) from exc
    # surrogateescape: bytes that are not UTF-8 reach the agent unchanged, as with `run --stdin`.
    return parse_input(raw.decode("utf-8", "surrogateescape"), fmt=fmt, label=label)


def parse_input(text: str, *, fmt: InputFormat = "auto", label: str = "<input>") -> ParsedInput:
    """Parse batch input text. ``fmt="auto"`` picks JSONL when the first non-blank
    line starts with ``{``. Raises :class:`BatchInputError` with every problem."""
    text = text.removeprefix("\ufeff")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if fmt == "auto":
        first = next((line for line in lines if line.strip()), "")
        fmt = "jsonl" if first.lstrip().startswith("{") else "text"
    if fmt == "text":
        items = [
            BatchItem(id=str(n), index=0, line=n, message=line)
            for n, line in enumerate(lines, 1)
            if line.strip()
        ]
        parsed = ParsedInput(_numbered(items), "text")
    else:
        parsed = _parse_jsonl(lines, label)
    if not parsed.items:
        raise BatchInputError(
            f"the input {label} has no messages",
            hint="write one message per line (plain text), or one JSON object per line "
            'like {"id": "a", "message": "hello"}',
        )
    return parsed


def _numbered(items: list[BatchItem]) -> list[BatchItem]:
    return [
        BatchItem(it.id, i, it.line, it.message, it.session_id, it.attachments)
        for i, it in enumerate(items)
    ]


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_jsonl(lines: list[str], label: str) -> ParsedInput:
    problems: list[str] = []
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    unknown: dict[str, int] = {}

    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{label}:{n}"
        try:
            data = json.loads(line, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except ValueError as exc:
            problems.append(f"{where}: invalid JSON: {exc}")
            continue
        if not isinstance(data, dict):
            problems.append(f'{where}: expected a JSON object like {{"message": ...}}')
            continue
        bad = len(problems)
        for key in data:
            if key not in INPUT_KEYS:
                unknown.setdefault(key, n)

        item_id: ItemId = str(n)
        if "id" in data:
            raw_id = data["id"]
            if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | float):
                problems.append(f'{where}: "id" must be a string or a number')
            elif raw_id == "":
                problems.append(f'{where}: "id" is empty')
            else:
                item_id = raw_id
        key = id_key(item_id)
        if len(problems) == bad:
            if key in seen:
                problems.append(
                    f"{where}: duplicate id {json.dumps(item_id)} (first on line {seen[key]})"
                )
            else:
                seen[key] = n

        attachments: list[Attachment] = []
        raw_atts = data.get("attachments")
        if raw_atts is not None:
            if not isinstance(raw_atts, list):
                problems.append(f'{where}: "attachments" must be a list of objects')
            else:
                for i, raw in enumerate(raw_atts, 1):
                    try:
                        att = Attachment.from_dict(raw)
                    except ValueError as exc:
                        problems.append(f"{where}: attachment {i}: {exc}")
                        continue
                    problem = url_problem(att.url)
                    if problem:
                        problems.append(
                            f"{where}: attachment {i}: url {att.url!r}: {problem}; "
                            f"give a URL or an absolute path, like {URL_EXAMPLES}"
                        )
                        continue
                    attachments.append(att)

        message = data.get("message")
        if message is None:
            message = ""
            if not raw_atts:
                problems.append(f'{where}: no "message" (and no attachments)')
        elif not isinstance(message, str):
            problems.append(f'{where}: "message" must be a string')
            message = ""
        elif message == "" and not raw_atts:
            problems.append(f'{where}: "message" is empty (and there are no attachments)')

        session_id = data.get("session_id")
        if session_id is None:
            session_id = ""
        elif not isinstance(session_id, str):
            problems.append(f'{where}: "session_id" must be a string')
            session_id = ""

        if len(problems) == bad:
            items.append(BatchItem(item_id, 0, n, message, session_id, tuple(attachments)))

    if problems:
        count = len(problems)
        shown = problems[:MAX_PROBLEMS]
        if count > MAX_PROBLEMS:
            shown.append(f"... and {count - MAX_PROBLEMS} more")
        raise BatchInputError(
            f"invalid input {label}: {count} problem{'s' if count != 1 else ''}; nothing was run",
            problems=shown,
            hint='each line must be a JSON object like {"id": "a", "message": "hello"} '
            "with a unique id (or use --format text for plain lines)",
        )
    warnings = [
        f"{label}:{line}: key {key!r} is not used (used: {', '.join(INPUT_KEYS)})"
        for key, line in unknown.items()
    ]
    return ParsedInput(_numbered(items), "jsonl", warnings)


# --- output ---------------------------------------------------------------------------


class ResultWriter:
    """Writes result lines to a file descriptor, each with one ``write`` (looped
    only if the kernel takes part of it), so no line is ever left half-written
    by a signal: the event loop handles signals between lines, not inside one."""

    def __init__(self, fd: int, label: str, *, close: bool = False) -> None:
        self.fd = fd
        self.label = label
        self._close = close
        self.lines = 0

    def write(self, record: dict[str, object]) -> None:
        text = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from the input: escape it instead
            data = (json.dumps(record) + "\n").encode("ascii")
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.lines += 1

    def close(self) -> None:
        if self._close:
            os.close(self.fd)
            self._close = False


@dataclass(slots=True)
class OpenedOutput:
    writer: ResultWriter
    #: id key -> whether that item succeeded, for the ids already in the file (--resume).
    done: dict[str, bool] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def open_output(path: str | None, *, resume: bool = False) -> OpenedOutput:
    """Open the results destination: ``None`` or ``-`` is standard output, else
    ``path`` is opened for appending (created if missing). A torn last line (a
    run killed while writing it) is cut off with a warning. With ``resume``,
    the ids already in the file are read into :attr:`OpenedOutput.done`."""
    if path is None or path == "-":
        if resume:
            raise UsageError("--resume needs --output FILE: it reads the ids already done there")
        return OpenedOutput(ResultWriter(sys.stdout.fileno(), "<stdout>"))
    warnings: list[str] = []
    done: dict[str, bool] = {}
    flags = os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    readable = True
    try:
        try:
            fd = os.open(path, os.O_RDWR | flags, 0o666)
        except PermissionError:
            if resume:
                raise
            fd = os.open(path, os.O_WRONLY | flags, 0o666)  # write-only: append blindly
            readable = False
    except OSError as exc:
        raise BatchOutputError(
            f"cannot open the output {path}: {exc.strerror or exc}",
            hint="give a writable (and, for --resume, readable) file with --output",
            exit_code=2,
        ) from exc
    try:
        regular = readable and os.path.isfile(path)
        if regular:
            warnings += _cut_torn_tail(fd, path)
        if resume:
            if not regular:
                raise UsageError(f"--resume needs a regular file, and {path} is not one")
            done, more = _read_done(fd, path)
            warnings += more
    except OSError as exc:
        os.close(fd)
        raise BatchOutputError(
            f"cannot read the output {path}: {exc.strerror or exc}", exit_code=2
        ) from exc
    except BaseException:
        os.close(fd)
        raise
    return OpenedOutput(ResultWriter(fd, path, close=True), done, warnings)


def _cut_torn_tail(fd: int, path: str) -> list[str]:
    """Truncate ``fd`` after its last newline when it does not end with one."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return []
    end = size
    keep = 0
    chunk = 65536
    while end > 0:
        start = max(0, end - chunk)
        block = os.pread(fd, end - start, start)
        nl = block.rfind(b"\n")
        if nl >= 0:
            keep = start + nl + 1
            break
        end = start
    os.ftruncate(fd, keep)
    line = 1 if keep == 0 else _count_newlines(fd, keep) + 1
    return [
        f"{path}:{line}: the last line was incomplete (a run was stopped while writing it); "
        f"cut it off ({size - keep} bytes)"
    ]


def _count_newlines(fd: int, upto: int) -> int:
    count = 0
    pos = 0
    while pos < upto:
        block = os.pread(fd, min(1 << 20, upto - pos), pos)
        if not block:
            break
        count += block.count(b"\n")
        pos += len(block)
    return count


def _read_done(fd: int, path: str) -> tuple[dict[str, bool], list[str]]:
    done: dict[str, bool] = {}
    ignored: list[int] = []
    with os.fdopen(os.dup(fd), "rb") as fh:
        fh.seek(0)
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError:
                ignored.append(n)
                continue
            rid = rec.get("id") if isinstance(rec, dict) else None
            if isinstance(rid, bool) or not isinstance(rid, str | int | float) or rid == "":
                ignored.append(n)
                continue
            assert isinstance(rec, dict)
            ok = rec.get("error") is None and rec.get("exit_code") == 0
            key = id_key(rid)
            done[key] = done.get(key, False) or ok
    warnings = []
    if ignored:
        where = ", ".join(map(str, ignored[:5])) + (", ..." if len(ignored) > 5 else "")
        warnings.append(
            f"{path}: {len(ignored)} line{'s' if len(ignored) != 1 else ''} "
            f"(line {where}) are not result lines; ignored"
        )
    return done, warnings


def result_record(item: BatchItem, result: TurnResult) -> dict[str, object]:
    """The result line of one item."""
    return {
        "id": item.id,
        "index": item.index,
        "reply": result.reply,
        "session_id": result.session_id,
        "error": result.error,
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "duration_ms": result.duration_ms,
    }


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
