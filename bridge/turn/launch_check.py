"""Check that a launch plan can start here, before spawning it.

:func:`preflight` looks at the file system, so that "command not found" reads
as that and not as an ``OSError`` from deep inside process spawning: the
working directory, the command (on PATH or as a path), the programs the
profile ``requires``, and the script a known interpreter is asked to run.
:mod:`bridge.turn.launch` builds the plan without touching the file system.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import TYPE_CHECKING

from .errors import LaunchError

if TYPE_CHECKING:
    from .launch import LaunchPlan

__all__ = ["preflight"]

#: Programs that take a script path as their first plain argument, so a missing
#: script can be reported as such instead of as the interpreter's own error.
_INTERPRETER_RE = re.compile(
    r"(python(\d+(\.\d+)?)?|node|bash|sh|zsh|ruby|perl|deno|bun|php)(\.exe)?"
)
#: What a script argument looks like: a known extension or a path.
_SCRIPT_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".sh", ".rb", ".pl", ".ts", ".php")
#: Interpreter options that take no value, so the argument after them can still
#: be the script. Any other option might take a value (``-W ignore``) or mean
#: that no script follows (``-c CODE``, ``-m MODULE``, ``-e CODE``), and then
#: the check is skipped rather than risk a false "script not found".
_FLAGS_WITHOUT_VALUE = frozenset(
    {"-u", "-B", "-E", "-I", "-O", "-OO", "-q", "-s", "-S", "-v", "-x", "-w", "--no-warnings"}
)


def _check_requirements(plan: LaunchPlan, cwd: str) -> None:
    """Each program the profile says the agent needs is there (or the variable
    naming a replacement points at one); else LaunchError, exit 127."""
    if not plan.requires:
        return
    search = _search_path(plan.env.get("PATH", os.defpath), cwd)
    for program, install, var in plan.requires:
        chosen = plan.env.get(var, "") if var else ""
        wanted = chosen or program
        if "/" in wanted:
            path = os.path.join(cwd, wanted)
            found = path if os.path.isfile(path) and os.access(path, os.X_OK) else None
        else:
            found = shutil.which(wanted, path=search)
        if found is not None:
            continue
        where = f"{var}={chosen!r} names no program" if chosen else f"{wanted!r} is not on PATH"
        hint = f"install it: {install}" if install else "install it"
        if var and not chosen:
            hint += f"; or set {var} to its full path"
        raise LaunchError(
            f"this agent needs {program}, which is not installed here ({where})",
            hint=f"{hint}; PATH used: {search or '(empty)'}",
            exit_code=127,
        )


def preflight(plan: LaunchPlan) -> str:
    """Check that ``plan`` can start here; return the executable's path.

    Raises :class:`LaunchError`: working directory missing or not a directory
    (exit 2), command not found (127), not executable (126), a program the
    profile ``requires`` not found (127), and a script that a known
    interpreter would fail to open (127).
    """
    cwd = plan.cwd
    if not os.path.exists(cwd):
        raise LaunchError(
            f"working directory does not exist: {cwd}",
            hint=_cwd_hint(cwd),
        )
    if not os.path.isdir(cwd):
        raise LaunchError(
            f"working directory is not a directory: {cwd}",
            hint="point `cwd` (or --cwd) at a folder",
        )

    command = plan.argv[0]
    if "/" in command:
        path = os.path.join(cwd, command)
        if not os.path.exists(path):
            raise LaunchError(
                f"command not found: {command}",
                hint=f"no file at {os.path.normpath(path)}; relative commands are resolved "
                f"against the working directory {cwd}",
                exit_code=127,
            )
        if os.path.isdir(path):
            raise LaunchError(
                f"command is a directory, not a program: {command}",
                hint="point `command` at the program file inside it",
                exit_code=126,
            )
        if not os.access(path, os.X_OK):
            raise LaunchError(
                f"command is not executable: {command}",
                hint=f"chmod +x {os.path.normpath(path)}, or run it through its interpreter "
                "(like `command: python3 ./agent.py`)",
                exit_code=126,
            )
        executable = os.path.normpath(path)
    else:
        search = _search_path(plan.env.get("PATH", os.defpath), cwd)
        found = shutil.which(command, path=search)
        if found is None:
            raise LaunchError(
                f"command not found: {command!r} is not on PATH",
                hint=f"PATH used: {search or '(empty)'}; install it, give its full path, or "
                "set PATH in the profile's env",
                exit_code=127,
            )
        executable = found

    _check_requirements(plan, cwd)

    script = _script_argument(plan.argv)
    if script is not None and not os.path.exists(os.path.join(cwd, script)):
        raise LaunchError(
            f"script not found: {script} (in {cwd})",
            hint=f"{os.path.basename(command)} would fail to open it; check `args` or "
            "`command` and `cwd` in the profile",
            exit_code=127,
        )
    return executable


def _cwd_hint(cwd: str) -> str:
    if "/~" in cwd:
        return "'~' is not expanded in profiles; write ${HOME}/... instead"
    return "create it, or fix `cwd` in the profile (or --cwd)"


def _search_path(path: str, cwd: str) -> str:
    """PATH with relative entries made absolute against the agent's cwd.

    The child resolves a relative PATH entry (or an empty one, meaning ".")
    after changing into its working directory, so the check must too.
    """
    entries = [
        os.path.join(cwd, entry) if not os.path.isabs(entry) else entry
        for entry in path.split(os.pathsep)
    ]
    return os.pathsep.join(entries)


def _script_argument(argv: tuple[str, ...]) -> str | None:
    """The script a known interpreter in ``argv`` is asked to run, if any."""
    if len(argv) < 2 or not _INTERPRETER_RE.fullmatch(os.path.basename(argv[0])):
        return None
    for arg in argv[1:]:
        if arg.startswith("-"):
            if arg in _FLAGS_WITHOUT_VALUE:
                continue
            return None
        if arg.endswith(_SCRIPT_SUFFIXES) or "/" in arg:
            return arg
        return None
    return None
