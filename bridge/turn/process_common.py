"""What both process drivers share: limits, the spawn-error advice, pidfds.

:mod:`bridge.turn.process` drives agents on the event loop, :mod:`bridge.turn.process_sync`
on the calling thread; neither this module nor the blocking driver imports an
event loop, so a one-shot ``agentproc run`` starts without one.
"""

from __future__ import annotations

import errno
import os
import subprocess
from typing import TYPE_CHECKING

from .errors import LaunchError

if TYPE_CHECKING:
    from .launch import LaunchPlan

#: Read size for stdout and stderr. 64 KiB is the Linux pipe buffer: one read
#: empties a full pipe.
READ_CHUNK = 64 * 1024

#: After the agent exits, how long to wait for the rest of its output. Output
#: the agent wrote is already in the pipe, so EOF normally comes at once; the
#: wait only matters when a descendant still holds the pipe open, and then it
#: bounds how long that descendant can stretch the turn.
DRAIN_SECS = 0.2

#: After SIGKILL, how long to wait for the process to be gone before giving up
#: on it (a process stuck in the kernel cannot be killed sooner).
KILL_WAIT_SECS = 5.0

_HAS_PIDFD = hasattr(os, "pidfd_open")
_nofile_raised = False


def raise_nofile_limit() -> None:
    """Raise the soft open-file limit to the hard one, once per process.

    Each running turn holds four descriptors (three pipes and a pidfd); the
    common soft limit of 1024 would cap a bridge at about 250 turns at once.
    """
    global _nofile_raised
    if _nofile_raised:
        return
    _nofile_raised = True
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def spawn_error(exc: OSError, plan: LaunchPlan) -> LaunchError:
    """Turn an OSError from spawning into a reason a user can act on."""
    cmd = plan.argv[0]
    if exc.errno == errno.ENOENT:
        if exc.filename and str(exc.filename) == plan.cwd:
            return LaunchError(f"working directory does not exist: {plan.cwd}")
        return LaunchError(
            f"command not found: {cmd!r}",
            hint="check the profile's command and the PATH the agent gets",
            exit_code=127,
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return LaunchError(
            f"command is not executable: {cmd!r}", hint=f"chmod +x {cmd}", exit_code=126
        )
    if exc.errno == errno.ENOEXEC:
        return LaunchError(
            f"{cmd!r} is not a program the system can run",
            hint="a script needs a #! line, e.g. #!/bin/sh",
            exit_code=126,
        )
    if exc.errno == errno.E2BIG:
        return LaunchError(
            "the arguments and environment of this turn are too large to start the agent",
            hint="use `stdin: message` for long messages and keep env small",
        )
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return LaunchError(
            "too many open files to start another agent",
            hint="lower the number of turns running at once or raise `ulimit -n`",
            exit_code=1,
        )
    if exc.errno == errno.ENOTDIR:
        return LaunchError(f"working directory is not a directory: {plan.cwd}")
    return LaunchError(f"could not start {cmd!r}: {exc.strerror or exc}", exit_code=1)


def open_pidfd(pid: int) -> int:
    if not _HAS_PIDFD:
        return -1
    try:
        return os.pidfd_open(pid)
    except OSError:
        return -1


def popen_agent(plan: LaunchPlan, *, stdin_pipe: bool) -> subprocess.Popen[bytes]:
    """Start the agent of ``plan`` in a session of its own, with non-blocking
    pipes for stdout and stderr (and stdin when ``stdin_pipe``; else
    /dev/null). Raises :class:`LaunchError` saying why it cannot start."""
    raise_nofile_limit()
    try:
        popen = subprocess.Popen(
            plan.argv,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=plan.cwd,
            env=plan.env,
            start_new_session=True,
        )
    except OSError as exc:
        raise spawn_error(exc, plan) from None
    except ValueError as exc:  # embedded NUL that slipped past the plan checks
        raise LaunchError(f"could not start {plan.argv[0]!r}: {exc}") from None
    for f in (popen.stdout, popen.stderr, popen.stdin):
        if f is not None:
            os.set_blocking(f.fileno(), False)
    return popen
