"""The process layer without an event loop: one agent, one thread, for one-shot commands.

``agentproc run`` runs a single turn and exits. Loading an event loop for that
(asyncio and anyio) costs more than everything else the command does, so a
turn that needs no concurrency with the rest of a program (no permission
channel, no other turns) runs here instead: the same rules as
:class:`bridge.turn.process.AgentProcess`, carried out with a :mod:`selectors`
loop on the pipes and a pidfd.

- The agent starts in a session of its own (``setsid``); SIGTERM, then
  ``kill_grace_secs`` later SIGKILL, go to its whole group.
- stdout is handed on as it arrives, stderr is drained into a bounded tail,
  and stdin data is written as the pipe accepts it: no pipe can fill up.
- One deadline covers the whole turn, stdin writing included.
- When the agent exits, what is already in the pipes is read for
  :data:`~bridge.turn.process.DRAIN_SECS`, then the group is killed.
- A stop request (:meth:`BlockingProcess.stop`, safe to call from a signal
  handler) ends the turn as cancelled.

The conformance table and the lifecycle cases run through both drivers
(``tests/test_process_sync.py``), so they cannot drift apart.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable

from .launch import LaunchPlan
from .machine import ProcessExit
from .process_common import (
    DRAIN_SECS,
    KILL_WAIT_SECS,
    READ_CHUNK,
    open_pidfd,
    popen_agent,
)

__all__ = ["BlockingProcess"]


class BlockingProcess:
    """One running agent, driven by :meth:`run` on the calling thread."""

    def __init__(self, plan: LaunchPlan, popen: subprocess.Popen[bytes]) -> None:
        self.plan = plan
        self._popen = popen
        self.pid = popen.pid
        self.deadline = time.monotonic() + plan.timeout_secs
        self._pidfd = open_pidfd(popen.pid)
        self._stderr = bytearray()
        self._sel: selectors.BaseSelector = selectors.DefaultSelector()
        self._stop_requested = False
        self._exited = False
        self._reaped = False
        # A stop request wakes the selector through this pipe.
        self._wake_r, self._wake_w = os.pipe()
        self._open: set[int] = set()
        self._pending = memoryview(b"")
        self._on_stdout: Callable[[bytes], None] = _discard
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    @classmethod
    def spawn(cls, plan: LaunchPlan) -> BlockingProcess:
        """Start the agent; raises :class:`LaunchError` when it cannot start."""
        popen = popen_agent(plan, stdin_pipe=plan.stdin_data is not None)
        return cls(plan, popen)

    def stop(self) -> None:
        """End the turn as cancelled: SIGTERM, grace, SIGKILL; a second call kills
        the group at once. Safe in a signal handler."""
        if self._stop_requested:
            self._signal_group(signal.SIGKILL)
        self._stop_requested = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def run(self, on_stdout: Callable[[bytes], None]) -> ProcessExit:
        """Run the agent to the end and return how it ended."""
        timed_out = False
        self._on_stdout = on_stdout
        sel = self._sel
        try:
            out = self._popen.stdout
            err = self._popen.stderr
            assert out is not None and err is not None
            self._open = {out.fileno(), err.fileno()}
            sel.register(out.fileno(), selectors.EVENT_READ, "out")
            sel.register(err.fileno(), selectors.EVENT_READ, "err")
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
            if self._pidfd >= 0:
                sel.register(self._pidfd, selectors.EVENT_READ, "exit")
            self._pending = memoryview(self.plan.stdin_data or b"")
            if self._popen.stdin is not None:
                if self._pending:
                    sel.register(self._popen.stdin.fileno(), selectors.EVENT_WRITE, "in")
                else:
                    self._close_stdin()
            if not self._stop_requested:
                self._pump(self.deadline, until_exit=True, honour_stop=True)
            if not self._exited:
                timed_out = not self._stop_requested
                self._terminate()
            if self._open:
                self._pump(time.monotonic() + DRAIN_SECS, until_exit=False, honour_stop=False)
            self._signal_group(signal.SIGKILL)
        finally:
            if not self._reaped:
                self._signal_group(signal.SIGKILL)
                self._reap()
            sel.close()
            self._close_all()
        keep = self.plan.max_stderr_bytes
        tail = self._stderr[-keep:] if keep else b""
        return ProcessExit(
            returncode=self._popen.returncode if self._popen.returncode is not None else -9,
            timed_out=timed_out,
            cancelled=self._stop_requested and not timed_out,
            timeout_secs=self.plan.timeout_secs,
            stderr_tail=bytes(tail).decode("utf-8", "replace"),
        )

    def _pump(self, until: float, *, until_exit: bool, honour_stop: bool) -> None:
        """Serve the pipes until ``until``; or until the agent exited (``until_exit``),
        else until both output pipes are closed; or, with ``honour_stop``, a stop request."""
        sel = self._sel
        while True:
            if honour_stop and self._stop_requested:
                return
            if until_exit and self._exited:
                return
            if not until_exit and not self._open:
                return
            wait = until - time.monotonic()
            if wait <= 0:
                return
            if self._pidfd < 0 and not self._exited:
                wait = min(wait, 0.05)  # no pidfd: look at the child now and then
            for key, _ in sel.select(wait):
                what = key.data
                if what == "exit":
                    self._exited = True
                    sel.unregister(self._pidfd)
                elif what == "wake":
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 64)
                elif what == "in":
                    self._write_some()
                else:
                    data = _read(key.fd)
                    if data is None:
                        continue
                    if not data:
                        sel.unregister(key.fd)
                        self._open.discard(key.fd)
                    elif what == "out":
                        self._on_stdout(data)
                    else:
                        self._capture_stderr(data)
            if self._pidfd < 0 and not self._exited and self._popen.poll() is not None:
                self._exited = True
                self._reaped = True

    # -- helpers

    def _write_some(self) -> None:
        stdin = self._popen.stdin
        assert stdin is not None
        try:
            n = os.write(stdin.fileno(), self._pending[: 64 * 1024])
        except BlockingIOError:
            return
        except OSError:  # the agent closed its stdin: the rest is not wanted
            n = len(self._pending)
        self._pending = self._pending[n:]
        if not self._pending:
            self._sel.unregister(stdin.fileno())
            self._close_stdin()

    def _capture_stderr(self, data: bytes) -> None:
        keep = max(self.plan.max_stderr_bytes, 1)
        self._stderr += data
        if len(self._stderr) > 2 * keep:
            del self._stderr[:-keep]

    def _terminate(self) -> None:
        # Keep reading while the agent winds down, so a chatty exit cannot
        # block on a full pipe.
        self._signal_group(signal.SIGTERM)
        self._pump(time.monotonic() + self.plan.kill_grace_secs, until_exit=True, honour_stop=False)
        if not self._exited:
            self._signal_group(signal.SIGKILL)
            self._pump(time.monotonic() + KILL_WAIT_SECS, until_exit=True, honour_stop=False)

    def _signal_group(self, sig: int) -> None:
        if self._reaped:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def _reap(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(KILL_WAIT_SECS)
        self._reaped = True

    def _close_stdin(self) -> None:
        stdin = self._popen.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.close()

    def _close_all(self) -> None:
        self._close_stdin()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        for f in (self._popen.stdout, self._popen.stderr):
            if f is not None:
                f.close()


def _read(fd: int) -> bytes | None:
    """A chunk from a non-blocking pipe; b"" at EOF; None when nothing is there yet."""
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _discard(data: bytes) -> None:
    pass
