"""Expand a profile into a launch plan for one turn, and check it can start.

:func:`build_plan` is pure apart from reading the bridge's environment (which
callers can pass in): it turns a :class:`~bridge.turn.profile.Profile` and one turn's
input into the exact argv, environment, working directory and stdin bytes, or
raises :class:`~bridge.turn.errors.LaunchError` with a reason a user can act on.
:func:`preflight` then looks at the file system, so that "command not found"
reads as that and not as an ``OSError`` from deep inside process spawning.

Expansion rules (the protocol's, stated once here):

- ``{{MESSAGE}}``, ``{{SESSION_ID}}``, ``{{SESSION_NAME}}``, ``{{PROFILE_DIR}}``,
  ``{{PYTHON}}``
  and ``${VAR}`` are replaced in a single pass with one regular expression over
  the profile author's text only. Inserted values are never scanned again, so
  a message saying ``{{SESSION_ID}}`` or ``${HOME}`` reaches the agent as typed.
- ``${VAR}`` reads the bridge's environment filtered to the infra set plus
  ``env_allowlist``: a profile cannot copy the bridge's secrets into a command
  line unless its author allowed them. A blocked or unset variable becomes
  ``""`` with a warning.
- User text (the message, ``--env`` values, the session name) is never expanded.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentproc import wire
from bridge.turn.profile_files import ENV_NAME_RE, TOKEN_RE

from .errors import LaunchError

if TYPE_CHECKING:
    from bridge.turn.profile import Profile
    from bridge.turn.profile_cache import ProfileView

__all__ = [
    "ARG_MAX_SAFETY_BYTES",
    "FALLBACK_ARG_MAX",
    "INFRA_ENV_PREFIXES",
    "INFRA_ENV_VARS",
    "MAX_ARG_STRLEN",
    "PASSED_SDK_VARS",
    "LaunchPlan",
    "arg_max",
    "build_plan",
    "is_infra_var",
    "preflight",
]

# --- limits ------------------------------------------------------------------------

#: Longest single argv or environment string Linux accepts, in bytes, counting
#: ``NAME=`` and the terminating NUL: ``MAX_ARG_STRLEN`` is 32 pages of 4 KiB in
#: the kernel. ``execve`` fails with E2BIG beyond it, whatever the total. Other
#: systems have no such per-string limit; keeping to it everywhere costs little
#: and makes a profile behave the same on every host.
MAX_ARG_STRLEN = 32 * 4096

#: Bytes kept free below ``ARG_MAX`` when checking the total size of argv and
#: the environment. The kernel also stores the executable's path, the auxiliary
#: vector and alignment padding in that space; 16 KiB covers them with room.
ARG_MAX_SAFETY_BYTES = 16 * 1024

#: Used when ``sysconf`` cannot say: the smallest ARG_MAX of current systems
#: (Linux with a small stack limit; 128 KiB is the kernel's floor).
FALLBACK_ARG_MAX = 128 * 1024

#: Each argv and envp string also costs one pointer in the arrays execve copies.
_POINTER_BYTES = 8

#: What the child inherits by default: enough for programs, shells and locales
#: to work, and nothing that usually holds a secret.
INFRA_ENV_VARS = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM", "TMPDIR", "TZ", "PWD"}
)
INFRA_ENV_PREFIXES = ("LC_",)

#: Settings of the agent SDK that a person running the bridge means for the
#: agents too: ``AGENTPROC_DEBUG=1`` makes a crashing SDK agent print its
#: traceback, which is what the SDK's one-line failure note tells them to set.
PASSED_SDK_VARS = frozenset({wire.ENV_DEBUG})

#: ``{{PYTHON}}``: the interpreter running the bridge. It has the agentproc SDK
#: even when the bridge lives in a virtual environment that is not activated
#: (pipx, ``.venv/bin/agentproc``), where the ``python3`` on PATH may not.
PYTHON = sys.executable or "python3"


def is_infra_var(name: str) -> bool:
    """True for the variables every agent inherits (PATH, HOME, LC_*, ...)."""
    return name in INFRA_ENV_VARS or name.startswith(INFRA_ENV_PREFIXES)


@functools.cache
def arg_max() -> int:
    """Bytes the system accepts for argv and the environment together."""
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        return FALLBACK_ARG_MAX
    return value if value > 0 else FALLBACK_ARG_MAX


def _arg_space() -> int:
    """The total the plan may use: ARG_MAX less a safety margin, never less than half."""
    limit = arg_max()
    return max(limit - ARG_MAX_SAFETY_BYTES, limit // 2)


# --- the plan ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """Everything needed to start the agent for one turn, fully expanded."""

    argv: tuple[str, ...]
    env: dict[str, str]
    #: Absolute path of the working directory.
    cwd: str
    #: Bytes to write to stdin before closing it; None: no data.
    stdin_data: bytes | None
    #: Keep stdin open as a pipe for permission responses.
    stdin_open: bool
    timeout_secs: float
    kill_grace_secs: float
    streaming: bool
    max_reply_chars: int
    truncation_suffix: str
    max_line_bytes: int
    max_stderr_bytes: int
    permission: bool
    permission_timeout_secs: float | None
    #: Things the user should know that do not stop the turn (unset ${VAR}, ...).
    warnings: tuple[str, ...] = ()
    #: Programs the agent needs besides its command: (program, install hint,
    #: variable naming a replacement or "").
    requires: tuple[tuple[str, str, str], ...] = ()
    #: Add the stderr tail to the reply of a turn that succeeded.
    include_stderr_in_reply: bool = False


def _encode(text: str, what: str) -> bytes:
    """Encode a string as ``execve`` will (the file system encoding), or fail clearly."""
    if "\0" in text:
        raise LaunchError(
            f"{what} contains a NUL byte, which cannot be passed to a process",
            hint="remove the NUL character",
        )
    try:
        return text.encode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start]
        raise LaunchError(
            f"{what} contains a character that cannot be encoded "
            f"(U+{ord(bad):04X} at position {exc.start + 1})",
            hint="remove the character; a lone surrogate usually comes from broken input",
        ) from None


def _stdin_bytes(message: str) -> bytes:
    """The message as the protocol puts it on stdin: UTF-8, nothing added."""
    try:
        return message.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise LaunchError(
            f"the message contains a character that cannot be encoded as UTF-8 "
            f"(U+{ord(exc.object[exc.start]):04X} at position {exc.start + 1})",
        ) from None


class _Expander:
    """Replaces placeholders and ``${VAR}`` in the profile author's text."""

    def __init__(
        self, values: Mapping[str, str], environ: Mapping[str, str], allow: Iterable[str]
    ) -> None:
        self.values = values
        self.environ = environ
        self.allow = tuple(allow)
        #: Warnings in order, without repeats (a dict keeps insertion order).
        self.warnings: dict[str, None] = {}

    def expand(self, text: str) -> str:
        return TOKEN_RE.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        name = match.group("placeholder")
        if name is not None:
            # Validation refused unknown names; keep the text if one slips through
            # (a Profile built with model_construct) rather than guess.
            return self.values.get(name, match.group(0))
        var = match.group("var")
        if var is not None:
            return self._variable(var)
        if match.group("dollar") is not None:
            return "$"
        return match.group(0)

    def _variable(self, var: str) -> str:
        visible = is_infra_var(var) or _allowed(var, self.allow)
        if visible and var in self.environ:
            return self.environ[var]
        if visible:
            warning = (
                f"${{{var}}} expands to '' because {var} is not set in the bridge's environment"
            )
        elif var in self.environ:
            warning = (
                f"${{{var}}} expands to '' because {var} is not in the profile's env_allowlist; "
                "add it to env_allowlist to use it"
            )
        else:
            warning = (
                f"${{{var}}} expands to '' because {var} is not set and not in the profile's "
                "env_allowlist; set it and add it to env_allowlist to use it"
            )
        self.warnings[warning] = None
        return ""


# The inherited part of the child's environment, for os.environ: recomputed
# only when the bridge's environment changes (compared as raw bytes, which is
# one C-level dict comparison instead of decoding every variable per turn).
_inherit_cache: dict[tuple[str, tuple[str, ...]], tuple[dict[bytes, bytes], dict[str, str]]] = {}


def _inherited_env(environ: Mapping[str, str], mode: str, allow: tuple[str, ...]) -> dict[str, str]:
    """The variables a child inherits from ``environ``: the infra set (or all of
    it for ``env_inherit: all``) and those matching ``env_allowlist``. Turn
    variables of the bridge's own environment (a bridge started by an agent)
    are never passed on."""
    raw = getattr(environ, "_data", None) if environ is os.environ else None
    key = (mode, allow)
    if raw is not None:
        hit = _inherit_cache.get(key)
        if hit is not None and hit[0] == raw:
            return dict(hit[1])
    env: dict[str, str] = {}
    for name, value in environ.items():
        if name in wire.TURN_ENV_VARS:
            continue
        if mode == "all" or is_infra_var(name) or name in PASSED_SDK_VARS or _allowed(name, allow):
            env[name] = value
    if raw is not None:
        if len(_inherit_cache) > 64:
            _inherit_cache.clear()
        _inherit_cache[key] = (dict(raw), env)
        return dict(env)
    return env


def _allowed(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def build_plan(
    profile: Profile | ProfileView,
    message: str,
    *,
    session_id: str = "",
    session_name: str = wire.DEFAULT_SESSION_NAME,
    from_user: str = "",
    attachments: Iterable[wire.Attachment] = (),
    streaming: bool | None = None,
    cwd: str | os.PathLike[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> LaunchPlan:
    """Expand ``profile`` for one turn into a :class:`LaunchPlan`.

    ``cwd`` (the CLI's ``--cwd``) overrides the profile's; ``extra_env`` (the
    CLI's ``--env``) is taken literally and goes after the profile's ``env``;
    ``timeout`` overrides ``timeout_secs``; ``environ`` is the bridge's
    environment (``os.environ`` by default). Raises :class:`LaunchError`
    (exit code 2) for a turn that cannot be passed to a process.
    """
    environ = os.environ if environ is None else environ
    atts = tuple(attachments)
    if message == "" and not atts:
        raise LaunchError(
            "empty turn: there is no message text and no attachment to send",
            hint="send some text or an attachment",
            exit_code=2,
        )

    # User input, checked first so an error names where the bad value came from.
    message_bytes = _encode(message, "the message")
    _encode(session_id, "the session id")
    if session_id and not wire.is_valid_session_id(session_id):
        raise LaunchError(f"invalid session id {session_id[:80]!r}", hint=wire.SESSION_ID_RULE)
    session_name = session_name or wire.DEFAULT_SESSION_NAME
    _encode(session_name, "the session name")
    _encode(from_user, "the from-user name")
    for att in atts:
        for label, value in (("url", att.url), ("name", att.name), ("mime type", att.mime_type)):
            if value is not None:
                _encode(value, f"the {label} of an attachment")
    extra = dict(extra_env or {})
    for key, value in extra.items():
        if not ENV_NAME_RE.fullmatch(key):
            raise LaunchError(
                f"invalid environment variable name {key[:80]!r} in --env",
                hint="use NAME=VALUE with letters, digits and '_'",
            )
        if key in wire.TURN_ENV_VARS:
            raise LaunchError(
                f"--env cannot set {key}: the bridge sets it for every turn",
                hint="pass the value through the turn itself (message, session, attachments)",
            )
        _encode(value, f"the --env value for {key}")

    timeout_secs = profile.timeout_secs
    if timeout is not None:
        if not (timeout > 0 and math.isfinite(timeout)):
            raise LaunchError(
                f"invalid timeout {timeout!r}: it must be a positive number of seconds"
            )
        timeout_secs = float(timeout)

    profile_dir = str(profile.profile_dir)
    allow = profile.env_allowlist
    expander = _Expander(
        {
            "MESSAGE": message,
            "SESSION_ID": session_id,
            "SESSION_NAME": session_name,
            "PROFILE_DIR": profile_dir,
            "PYTHON": PYTHON,
        },
        environ,
        allow,
    )

    # argv: split the author's text first, so an inserted message stays one argument.
    if profile.args is None:
        templates = profile.command.split()
        if len(templates) > 1 and any(q in profile.command for q in "'\""):
            expander.warnings[
                "`command` is split on whitespace only and quotes in it are passed as they "
                "are; put arguments that contain spaces in `args`, one per item"
            ] = None
    else:
        templates = [profile.command, *profile.args]
    argv = [expander.expand(t) for t in templates]
    if not argv or not argv[0]:
        raise LaunchError(
            "the command is empty after expanding placeholders and variables",
            hint=f"check `command` in the profile ({profile.command!r})",
        )

    if cwd is not None:
        workdir = os.path.abspath(os.fspath(cwd))
        cwd_what = "the working directory (--cwd)"
    elif profile.cwd is not None:
        workdir = os.path.abspath(os.path.join(profile_dir, expander.expand(profile.cwd)))
        cwd_what = "the working directory (profile `cwd`)"
    elif profile.runs_in_caller_cwd:
        workdir = os.getcwd()
        cwd_what = "the bridge's current directory (a reference profile without `cwd`)"
    else:
        workdir = os.path.abspath(profile_dir)
        cwd_what = "the profile's folder"
    _encode(workdir, cwd_what)

    env = _inherited_env(environ, profile.env_inherit, tuple(allow))
    env["PWD"] = workdir
    for key, template in profile.env.items():
        env[key] = expander.expand(template)
    env.update(extra)

    streaming_on = profile.streaming if streaming is None else streaming
    env_message: str | None = message
    if _env_entry_size(wire.ENV_MESSAGE, message_bytes) > MAX_ARG_STRLEN:
        if profile.stdin != "message":
            raise _message_too_large(len(message_bytes))
        env_message = None  # the agent reads it whole from stdin

    env.update(
        wire.turn_env(
            env_message,
            session_id=session_id,
            session_name=session_name,
            from_user=from_user,
            streaming=streaming_on,
            attachments=atts,
            permission=profile.permission,
        )
    )
    total = _check_strings(argv, env, templates)
    if total > _arg_space() and env_message is not None:
        if profile.stdin == "message":
            env.pop(wire.ENV_MESSAGE)
            env[wire.ENV_MESSAGE_ON_STDIN] = "1"
            total = _total_size(argv, env)
        else:
            # Point at stdin when taking the message out of the environment would be enough.
            message_size = _env_entry_size(wire.ENV_MESSAGE, message_bytes) + _POINTER_BYTES
            raise _total_too_large(argv, env, message_is_big=total - message_size <= _arg_space())
    if total > _arg_space():
        raise _total_too_large(argv, env, message_is_big=False)

    return LaunchPlan(
        argv=tuple(argv),
        env=env,
        cwd=workdir,
        stdin_data=_stdin_bytes(message) if profile.stdin == "message" else None,
        stdin_open=profile.permission,
        timeout_secs=timeout_secs,
        kill_grace_secs=profile.kill_grace_secs,
        streaming=streaming_on,
        max_reply_chars=profile.max_reply_chars,
        truncation_suffix=profile.truncation_suffix,
        max_line_bytes=profile.max_line_bytes,
        max_stderr_bytes=profile.max_stderr_bytes,
        permission=profile.permission,
        permission_timeout_secs=profile.permission_timeout_secs,
        warnings=(*profile.load_warnings, *expander.warnings),
        include_stderr_in_reply=profile.include_stderr_in_reply,
        requires=tuple(_requirement(r) for r in profile.requires),
    )


def _requirement(item: object) -> tuple[str, str, str]:
    """(program, install, env) of a Requirement, or of its cached JSON form."""
    if isinstance(item, dict):
        return (str(item["program"]), str(item.get("install") or ""), str(item.get("env") or ""))
    program, install, env = (getattr(item, k) for k in ("program", "install", "env"))
    return (program, install or "", env or "")


def _env_entry_size(key: str, value: bytes) -> int:
    """Bytes of ``KEY=VALUE`` plus its NUL, as execve counts it."""
    return len(key.encode()) + 1 + len(value) + 1


def _kib(n: int) -> str:
    return f"{n // 1024} KiB"


def _message_too_large(size: int) -> LaunchError:
    return LaunchError(
        f"the message is {size} bytes, too large to pass in the environment "
        f"(limit {_kib(MAX_ARG_STRLEN)})",
        hint="set `stdin: message` in the profile so the agent reads it from stdin",
    )


def _check_strings(argv: list[str], env: Mapping[str, str], templates: list[str]) -> int:
    """Every argv and env string: no NUL, encodable, within MAX_ARG_STRLEN.

    Returns the total size, as :func:`_total_size` counts it.
    """
    total = _POINTER_BYTES * (len(argv) + len(env) + 2)
    for index, arg in enumerate(argv):
        what = "the command" if index == 0 else f"argument {index} of the command"
        size = len(_encode(arg, what)) + 1
        total += size
        if size > MAX_ARG_STRLEN:
            hint = "shorten it"
            if "MESSAGE" in templates[index]:
                hint = (
                    "the profile puts {{MESSAGE}} in it; set `stdin: message` and let the "
                    "agent read the message from stdin instead"
                )
            raise LaunchError(
                f"{what} is {size - 1} bytes, too large for one argument "
                f"(limit {_kib(MAX_ARG_STRLEN)})",
                hint=hint,
            )
    for key, value in env.items():
        what = f"the environment variable {key}"
        _encode(key, f"the name of {what}")
        size = _env_entry_size(key, _encode(value, what))
        total += size
        if size > MAX_ARG_STRLEN:
            hint = "shorten it"
            if key == wire.ENV_ATTACHMENTS:
                hint = "send fewer attachments or shorter URLs"
            raise LaunchError(
                f"{what} is {size} bytes, too large for the environment "
                f"(limit {_kib(MAX_ARG_STRLEN)})",
                hint=hint,
            )
    return total


def _total_size(argv: list[str], env: Mapping[str, str]) -> int:
    fsenc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    total = sum(len(a.encode(fsenc, errors)) + 1 for a in argv)
    total += sum(
        len(k.encode(fsenc, errors)) + len(v.encode(fsenc, errors)) + 2 for k, v in env.items()
    )
    return total + _POINTER_BYTES * (len(argv) + len(env) + 2)


def _total_too_large(
    argv: list[str], env: Mapping[str, str], *, message_is_big: bool
) -> LaunchError:
    hint = "pass less in args and env, or set env_inherit: infra"
    if message_is_big:
        hint = "set `stdin: message` in the profile so the agent reads the message from stdin"
    return LaunchError(
        f"the command line and environment together are {_total_size(argv, env)} bytes, "
        f"more than this system allows (about {_arg_space()} bytes)",
        hint=hint,
    )


# --- preflight ----------------------------------------------------------------------

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
