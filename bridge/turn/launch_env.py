"""What ``execve`` accepts and what an agent inherits: the environment half of a launch plan.

:mod:`bridge.turn.launch` builds the plan; this module holds the rules it
checks the plan against, stated once:

- the size limits of argv and the environment (``MAX_ARG_STRLEN`` per
  string, ``ARG_MAX`` for all of them together), with errors that say which
  string is too large and what to do about it;
- :func:`encode_arg`: a string as ``execve`` will pass it, or a clear error
  for a NUL byte or a character the file system encoding cannot carry;
- :func:`inherited_env`: the part of the bridge's environment a child gets
  (the infra set, or all of it for ``env_inherit: all``, plus ``env_allowlist``).
"""

from __future__ import annotations

import fnmatch
import functools
import os
import sys
from collections.abc import Iterable, Mapping

from agentproc import wire

from .errors import LaunchError

__all__ = [
    "ARG_MAX_SAFETY_BYTES",
    "FALLBACK_ARG_MAX",
    "INFRA_ENV_PREFIXES",
    "INFRA_ENV_VARS",
    "MAX_ARG_STRLEN",
    "PASSED_SDK_VARS",
    "POINTER_BYTES",
    "allowlisted",
    "arg_max",
    "arg_space",
    "check_strings",
    "encode_arg",
    "env_entry_size",
    "inherited_env",
    "is_infra_var",
    "message_too_large",
    "total_size",
    "total_too_large",
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
POINTER_BYTES = 8

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


def arg_space() -> int:
    """The total the plan may use: ARG_MAX less a safety margin, never less than half."""
    limit = arg_max()
    return max(limit - ARG_MAX_SAFETY_BYTES, limit // 2)


# --- strings and sizes --------------------------------------------------------------


def encode_arg(text: str, what: str) -> bytes:
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


def env_entry_size(key: str, value: bytes) -> int:
    """Bytes of ``KEY=VALUE`` plus its NUL, as execve counts it."""
    return len(key.encode()) + 1 + len(value) + 1


def _kib(n: int) -> str:
    return f"{n // 1024} KiB"


def message_too_large(size: int) -> LaunchError:
    """The error for a message that ``AGENT_MESSAGE`` cannot carry."""
    return LaunchError(
        f"the message is {size} bytes, too large to pass in the environment "
        f"(limit {_kib(MAX_ARG_STRLEN)})",
        hint="set `stdin: message` in the profile so the agent reads it from stdin",
    )


def check_strings(argv: list[str], env: Mapping[str, str], templates: list[str]) -> int:
    """Every argv and env string: no NUL, encodable, within MAX_ARG_STRLEN.

    Returns the total size, as :func:`total_size` counts it.
    """
    total = POINTER_BYTES * (len(argv) + len(env) + 2)
    for index, arg in enumerate(argv):
        what = "the command" if index == 0 else f"argument {index} of the command"
        size = len(encode_arg(arg, what)) + 1
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
        encode_arg(key, f"the name of {what}")
        size = env_entry_size(key, encode_arg(value, what))
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


def total_size(argv: list[str], env: Mapping[str, str]) -> int:
    """Bytes ``execve`` needs for ``argv`` and ``env``: the strings with their NULs
    and one pointer each (plus the two terminating NULL pointers)."""
    fsenc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    total = sum(len(a.encode(fsenc, errors)) + 1 for a in argv)
    total += sum(
        len(k.encode(fsenc, errors)) + len(v.encode(fsenc, errors)) + 2 for k, v in env.items()
    )
    return total + POINTER_BYTES * (len(argv) + len(env) + 2)


def total_too_large(
    argv: list[str], env: Mapping[str, str], *, message_is_big: bool
) -> LaunchError:
    """The error for a plan whose argv and environment together pass ``ARG_MAX``."""
    hint = "pass less in args and env, or set env_inherit: infra"
    if message_is_big:
        hint = "set `stdin: message` in the profile so the agent reads the message from stdin"
    return LaunchError(
        f"the command line and environment together are {total_size(argv, env)} bytes, "
        f"more than this system allows (about {arg_space()} bytes)",
        hint=hint,
    )


# --- inheritance ----------------------------------------------------------------------

# The inherited part of the child's environment, for os.environ: recomputed
# only when the bridge's environment changes (compared as raw bytes, which is
# one C-level dict comparison instead of decoding every variable per turn).
_inherit_cache: dict[tuple[str, tuple[str, ...]], tuple[dict[bytes, bytes], dict[str, str]]] = {}


def inherited_env(environ: Mapping[str, str], mode: str, allow: tuple[str, ...]) -> dict[str, str]:
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
        if (
            mode == "all"
            or is_infra_var(name)
            or name in PASSED_SDK_VARS
            or allowlisted(name, allow)
        ):
            env[name] = value
    if raw is not None:
        if len(_inherit_cache) > 64:
            _inherit_cache.clear()
        _inherit_cache[key] = (dict(raw), env)
        return dict(env)
    return env


def allowlisted(name: str, patterns: Iterable[str]) -> bool:
    """True when ``name`` matches one of the ``env_allowlist`` patterns (shell-style)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
