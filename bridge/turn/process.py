"""The process layer: the only code that spawns, feeds, reads and kills agents.

One :class:`AgentProcess` owns one agent's life, and an ``async with`` owns
the :class:`AgentProcess`::

    async with AgentProcess.start(plan) as proc:
        exit_info = await proc.run(on_stdout)

The agent is spawned when the block is entered; however the block is left
(normally, by an exception, or by cancellation) the process group is stopped
if it still runs (SIGTERM, ``kill_grace_secs``, SIGKILL), the agent is reaped
and its pipes are closed, so no caller can leak a process. Within the block:

- it starts in a session of its own (``setsid``), so its process group holds
  everything it starts and a terminal's Ctrl-C never reaches it directly;
- stdout is handed on in chunks as it arrives, stderr is drained at the same
  time into a bounded tail, and stdin data is written concurrently, so no pipe
  can fill up and stall the turn;
- one deadline covers the whole turn, stdin writing included; at the deadline
  or on a stop request the group gets SIGTERM, then ``kill_grace_secs`` later
  SIGKILL;
- when the agent exits, what is already in the pipes is read for a short
  moment (:data:`DRAIN_SECS`), then the whole group is killed: nothing an agent
  started outlives its turn and no descendant holding a pipe can stretch it.

The process is watched with a pidfd where the platform has one, and pipes are
read with non-blocking ``os.read`` when the event loop says they are readable:
no thread per process, no polling loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.lowlevel

from .launch import LaunchPlan
from .machine import ProcessExit
from .process_common import (
    DRAIN_SECS,
    KILL_WAIT_SECS,
    READ_CHUNK,
    open_pidfd,
    popen_agent,
)

Sink = Callable[[bytes], Awaitable[None] | None]


class AgentProcess:
    """One running agent. Start it with ``async with AgentProcess.start(plan)``,
    drive it with :meth:`run`."""

    def __init__(self, plan: LaunchPlan, popen: subprocess.Popen[bytes]) -> None:
        self.plan = plan
        self._popen = popen
        self.pid = popen.pid
        self.deadline = anyio.current_time() + plan.timeout_secs
        self._pidfd = open_pidfd(popen.pid)
        self._stdin_fd = popen.stdin.fileno() if popen.stdin is not None else -1
        self._stderr = bytearray()
        self._exited = False
        self._wait_scope: anyio.CancelScope | None = None
        self._out_done = anyio.Event()
        self._err_done = anyio.Event()
        self._stop_requested = False
        self._reaped = False

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, plan: LaunchPlan) -> AsyncIterator[AgentProcess]:
        """Start the agent for the ``async with`` block, and stop it when the block
        is left (see :meth:`aclose`). Raises :class:`LaunchError` on entering
        when the agent cannot start."""
        popen = popen_agent(plan, stdin_pipe=plan.stdin_data is not None or plan.stdin_open)
        proc = cls(plan, popen)
        try:
            yield proc
        finally:
            await proc.aclose()

    async def aclose(self) -> None:
        """Make sure the agent is gone: if it still runs, SIGTERM to its group,
        ``kill_grace_secs`` to exit, then SIGKILL; then SIGKILL to whatever it
        left running in its group, reap it and close its pipes. Shielded from
        cancellation, and a no-op once done (:meth:`run` does it on its way out)."""
        with anyio.CancelScope(shield=True):
            if not self._reaped:
                if not self._exited:
                    # Returns at once when the agent has exited unseen (the
                    # pidfd is readable); then SIGTERM reaches what it left.
                    await self._terminate()
                self._signal_group(signal.SIGKILL)
                await self._reap()
            self._close_pipes()

    # -- driving

    def stop(self) -> None:
        """Ask :meth:`run` to stop the agent now (SIGTERM, grace, SIGKILL)."""
        self._stop_requested = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    async def run(self, on_stdout: Sink) -> ProcessExit:
        """Run the agent to the end and return how it ended.

        ``on_stdout`` gets every chunk of stdout as it arrives (plain or async).
        If the caller's scope is cancelled, the group is killed at once and the
        process reaped before the cancellation goes on.
        """
        timed_out = False
        try:
            async with anyio.create_task_group() as tg:
                stdout = self._popen.stdout
                stderr = self._popen.stderr
                assert stdout is not None and stderr is not None
                tg.start_soon(self._pump_stdout, stdout.fileno(), on_stdout)
                tg.start_soon(self._pump_stderr, stderr.fileno())
                if self.plan.stdin_data is not None:
                    tg.start_soon(self._feed_stdin, self.plan.stdin_data)
                if not self._stop_requested:
                    with anyio.CancelScope(deadline=self.deadline) as scope:
                        self._wait_scope = scope
                        await self._wait_exit()
                    self._wait_scope = None
                if not self._exited:
                    timed_out = not self._stop_requested
                    await self._terminate()
                if not (self._out_done.is_set() and self._err_done.is_set()):
                    with anyio.move_on_after(DRAIN_SECS):
                        await self._out_done.wait()
                        await self._err_done.wait()
                self._signal_group(signal.SIGKILL)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if not self._reaped:
                    self._signal_group(signal.SIGKILL)
                    await self._reap()
                self._close_pipes()
        tail = self._stderr[-self.plan.max_stderr_bytes :] if self.plan.max_stderr_bytes else b""
        return ProcessExit(
            returncode=self._popen.returncode if self._popen.returncode is not None else -9,
            timed_out=timed_out,
            cancelled=self._stop_requested and not timed_out,
            timeout_secs=self.plan.timeout_secs,
            stderr_tail=bytes(tail).decode("utf-8", "replace"),
        )

    async def send(self, data: bytes) -> bool:
        """Write to the agent's open stdin (the permission channel).

        Returns False when the agent has closed its stdin or exited.
        """
        if self._stdin_fd < 0:
            return False
        return await self._write_all(self._stdin_fd, data)

    # -- tasks

    async def _pump_stdout(self, fd: int, sink: Sink) -> None:
        try:
            await _pump(fd, sink)
        finally:
            self._out_done.set()

    async def _pump_stderr(self, fd: int) -> None:
        keep = max(self.plan.max_stderr_bytes, 1)
        buf = self._stderr

        def capture(data: bytes) -> None:
            nonlocal buf
            buf += data
            if len(buf) > 2 * keep:
                del buf[:-keep]

        try:
            await _pump(fd, capture)
        finally:
            self._err_done.set()

    async def _feed_stdin(self, data: bytes) -> None:
        await self._write_all(self._stdin_fd, data)
        self._close_stdin()

    async def _write_all(self, fd: int, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                await anyio.wait_writable(fd)
                continue
            except (BrokenPipeError, OSError):
                return False
            view = view[n:]
        return True

    async def _wait_exit(self) -> None:
        """Return once the agent has exited. It is not reaped here, so its pid
        (and process group id) stays reserved until the group is killed."""
        if self._exited:
            return
        if self._pidfd >= 0:
            await anyio.wait_readable(self._pidfd)
        else:
            await anyio.to_thread.run_sync(_wait_no_reap, self.pid, abandon_on_cancel=True)
        self._exited = True

    # -- stopping

    async def _terminate(self) -> None:
        self._signal_group(signal.SIGTERM)
        with anyio.move_on_after(self.plan.kill_grace_secs):
            await self._wait_exit()
        if not self._exited:
            self._signal_group(signal.SIGKILL)
            with anyio.move_on_after(KILL_WAIT_SECS):
                await self._wait_exit()

    def _signal_group(self, sig: int) -> None:
        # The leader is not reaped yet, so its pid (the group id) cannot have
        # been reused by an unrelated process.
        if self._reaped:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def _reap(self) -> None:
        if self._exited or self._popen.poll() is not None:
            self._popen.wait()
        else:
            with anyio.move_on_after(KILL_WAIT_SECS):
                await anyio.to_thread.run_sync(self._popen.wait, abandon_on_cancel=True)
        self._reaped = True

    def _close_stdin(self) -> None:
        if self._popen.stdin is not None and not self._popen.stdin.closed:
            with contextlib.suppress(OSError):
                self._popen.stdin.close()
        self._stdin_fd = -1

    def _close_pipes(self) -> None:
        self._close_stdin()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        for f in (self._popen.stdout, self._popen.stderr):
            if f is not None:
                f.close()


async def _pump(fd: int, sink: Sink) -> None:
    """Read a non-blocking pipe to EOF, handing each chunk to ``sink``."""
    while True:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            await anyio.wait_readable(fd)
            continue
        if not data:
            return
        result = sink(data)
        if result is not None:
            await result
        elif len(data) == READ_CHUNK:
            # More may be waiting; let other tasks (and the deadline) run.
            await anyio.lowlevel.checkpoint()


def _wait_no_reap(pid: int) -> None:
    waitid = getattr(os, "waitid", None)
    if waitid is not None:
        waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    else:  # pragma: no cover - platforms without waitid
        os.waitpid(pid, 0)
