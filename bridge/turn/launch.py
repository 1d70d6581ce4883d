"""Expand a profile into a launch plan for one turn, and check it can start.

:func:`build_plan` is pure apart from reading the bridge's environment (which
callers can pass in): it turns a :class:`~bridge.turn.profile.Profile` and one turn's
input into the exact argv, environment, working directory and stdin bytes, or
raises :class:`~bridge.turn.errors.LaunchError` with a reason a user can act on.
:func:`preflight` (in :mod:`bridge.turn.launch_check`) then looks at the file
system, so that "command not found" reads as that and not as an ``OSError``
from deep inside process spawning. The size limits and the rules of what a
child inherits are in :mod:`bridge.turn.launch_env`; the names of both are
re-exported here.

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

import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentproc import wire
from bridge.turn.profile_files import ENV_NAME_RE, TOKEN_RE

from .errors import LaunchError
from .launch_check import preflight
from .launch_env import (
    ARG_MAX_SAFETY_BYTES,
    FALLBACK_ARG_MAX,
    INFRA_ENV_PREFIXES,
    INFRA_ENV_VARS,
    MAX_ARG_STRLEN,
    PASSED_SDK_VARS,
    POINTER_BYTES,
    allowlisted,
    arg_max,
    arg_space,
    check_strings,
    encode_arg,
    env_entry_size,
    inherited_env,
    is_infra_var,
    message_too_large,
    total_size,
    total_too_large,
)

if TYPE_CHECKING:
    from bridge.turn.profile import Profile
    from bridge.turn.profile_cache import ProfileView

    from .request import TurnRequest

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

#: ``{{PYTHON}}``: the interpreter running the bridge. It has the agentproc SDK
#: even when the bridge lives in a virtual environment that is not activated
#: (pipx, ``.venv/bin/agentproc``), where the ``python3`` on PATH may not.
PYTHON = sys.executable or "python3"


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
        visible = is_infra_var(var) or allowlisted(var, self.allow)
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


def build_plan(
    profile: Profile | ProfileView,
    request: TurnRequest,
    *,
    environ: Mapping[str, str] | None = None,
) -> LaunchPlan:
    """Expand ``profile`` for one turn, ``request``, into a :class:`LaunchPlan`.

    The request's ``cwd`` (the CLI's ``--cwd``) overrides the profile's; its
    ``env`` (the CLI's ``--env``) is taken literally and goes after the
    profile's ``env``; its ``timeout`` overrides ``timeout_secs``. ``environ``
    is the bridge's environment (``os.environ`` by default). Raises
    :class:`LaunchError` (exit code 2) for a turn that cannot be passed to a
    process.
    """
    environ = os.environ if environ is None else environ
    message, session_id, cwd = request.message, request.session_id, request.cwd
    message_bytes, session_name, extra = _check_input(request)
    timeout_secs = profile.timeout_secs
    if request.timeout is not None:
        timeout_secs = _timeout(request.timeout)

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
        workdir = os.path.abspath(cwd)
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
    encode_arg(workdir, cwd_what)

    env = inherited_env(environ, profile.env_inherit, tuple(allow))
    env["PWD"] = workdir
    for key, template in profile.env.items():
        env[key] = expander.expand(template)
    env.update(extra)

    streaming_on = profile.streaming if request.streaming is None else request.streaming
    env_message: str | None = message
    if env_entry_size(wire.ENV_MESSAGE, message_bytes) > MAX_ARG_STRLEN:
        if profile.stdin != "message":
            raise message_too_large(len(message_bytes))
        env_message = None  # the agent reads it whole from stdin

    env.update(
        wire.turn_env(
            env_message,
            session_id=session_id,
            session_name=session_name,
            from_user=request.from_user,
            streaming=streaming_on,
            attachments=request.attachments,
            permission=profile.permission,
        )
    )
    total = check_strings(argv, env, templates)
    if total > arg_space() and env_message is not None:
        if profile.stdin == "message":
            env.pop(wire.ENV_MESSAGE)
            env[wire.ENV_MESSAGE_ON_STDIN] = "1"
            total = total_size(argv, env)
        else:
            # Point at stdin when taking the message out of the environment would be enough.
            message_size = env_entry_size(wire.ENV_MESSAGE, message_bytes) + POINTER_BYTES
            raise total_too_large(argv, env, message_is_big=total - message_size <= arg_space())
    if total > arg_space():
        raise total_too_large(argv, env, message_is_big=False)

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


def _check_input(request: TurnRequest) -> tuple[bytes, str, dict[str, str]]:
    """The user's part of the turn, checked first so that an error names where
    the bad value came from: (the message encoded, the session name, the
    extra environment)."""
    message, session_id = request.message, request.session_id
    if message == "" and not request.attachments:
        raise LaunchError(
            "empty turn: there is no message text and no attachment to send",
            hint="send some text or an attachment",
            exit_code=2,
        )
    message_bytes = encode_arg(message, "the message")
    encode_arg(session_id, "the session id")
    if session_id and not wire.is_valid_session_id(session_id):
        raise LaunchError(f"invalid session id {session_id[:80]!r}", hint=wire.SESSION_ID_RULE)
    session_name = request.session_name or wire.DEFAULT_SESSION_NAME
    encode_arg(session_name, "the session name")
    encode_arg(request.from_user, "the from-user name")
    for att in request.attachments:
        for label, value in (("url", att.url), ("name", att.name), ("mime type", att.mime_type)):
            if value is not None:
                encode_arg(value, f"the {label} of an attachment")
    extra = request.env_dict()
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
        encode_arg(value, f"the --env value for {key}")
    return message_bytes, session_name, extra


def _timeout(timeout: float) -> float:
    """A timeout override in seconds, or LaunchError."""
    if not (timeout > 0 and math.isfinite(timeout)):
        raise LaunchError(f"invalid timeout {timeout!r}: it must be a positive number of seconds")
    return float(timeout)


def _requirement(item: object) -> tuple[str, str, str]:
    """(program, install, env) of a Requirement, or of its cached JSON form."""
    if isinstance(item, dict):
        return (str(item["program"]), str(item.get("install") or ""), str(item.get("env") or ""))
    program, install, env = (getattr(item, k) for k in ("program", "install", "env"))
    return (program, install or "", env or "")
