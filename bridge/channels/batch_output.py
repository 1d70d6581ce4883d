"""The results file of a batch: one JSON line per item, appended as each ends.

:func:`open_output` opens the results file for appending, cuts off a torn
last line, and (for ``--resume``) reads which ids are already done;
:class:`ResultWriter` writes each line whole; :func:`result_record` is the
line of one item.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .batch_input import id_key
from .errors import BatchOutputError, UsageError

if TYPE_CHECKING:
    from bridge.turn.machine import TurnResult

    from .batch_input import BatchItem

__all__ = ["RESULT_KEYS", "OpenedOutput", "ResultWriter", "open_output", "result_record"]

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
