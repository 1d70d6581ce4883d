"""Validated profiles, remembered: a one-shot command loads a profile without the model.

Validating a profile needs YAML and the pydantic model, which cost more to
import than everything else ``agentproc run`` does. A profile file changes
rarely and is validated the same way every time, so the validated fields are
kept in a small JSON file per profile path, used only when the agentproc
version (and the profile model's own source files), the file's resolved
path and its exact bytes are what the entry recorded: an edited file, a
moved file, a changed model or a new release is a miss, and a miss
validates the file as always (with every error message) and writes the
entry again.

A hit gives a :class:`ProfileView`: the same fields and properties as a
:class:`~bridge.turn.profile.Profile`, read-only, without the model class. The
cache is an optimisation only: any problem reading or writing it (a read-only
home, a corrupt entry, a full disk) falls back to validating, silently.

Where: ``$AGENTPROC_CACHE_DIR``, else ``$XDG_CACHE_HOME/agentproc``, else
``~/.cache/agentproc``; ``AGENTPROC_CACHE_DIR=off`` turns it off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentproc import __version__

from .profile_files import ProfileProperties, read_profile_bytes, resolve_profile_path

if TYPE_CHECKING:
    from .profile import Profile

__all__ = ["ProfileView", "cache_dir", "load_profile_cached"]

#: Bumped when the entry format changes; part of every key.
FORMAT = 1


class ProfileView(ProfileProperties):
    """A validated profile read from the cache: the fields of a Profile, read-only."""

    if TYPE_CHECKING:  # the fields of bridge.turn.profile.Profile (a test keeps them equal)
        name: str | None
        description: str
        tags: list[str]
        command: str
        args: list[str] | None
        cwd: str | None
        env: dict[str, str]
        env_allowlist: list[str]
        env_inherit: Literal["infra", "all"]
        timeout_secs: float
        kill_grace_secs: float
        max_reply_chars: int
        truncation_suffix: str
        max_line_bytes: int
        max_stderr_bytes: int
        include_stderr_in_reply: bool
        streaming: bool
        stdin: Literal["none", "message"]
        permission: bool
        permission_timeout_secs: float | None
        busy_policy: Literal["queue", "reject", "interrupt", "collect"] | None
        queue_limit: int | None
        session_idle_secs: float | None
        requires: list[dict[str, str | None]]

    def __init__(self, fields: dict[str, Any], private: dict[str, Any], source: Path) -> None:
        self.__dict__.update(fields)
        self.__dict__.update(_PRIVATE_DEFAULTS)
        self.__dict__.update({k: v for k, v in private.items() if k in _PRIVATE_DEFAULTS})
        self.__dict__["_load_warnings"] = tuple(self.__dict__["_load_warnings"])
        self.__dict__["_source"] = source

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a cached profile is read-only (tried to set {name})")


#: The private attributes of a Profile a view keeps, with their defaults.
_PRIVATE_DEFAULTS: dict[str, Any] = {
    "_load_warnings": (),
    "_caller_cwd": False,
    "_reference": False,
}


def cache_dir(environ: dict[str, str] | os._Environ[str] | None = None) -> Path | None:
    """Where validated profiles are kept; None when the cache is off."""
    env = os.environ if environ is None else environ
    chosen = env.get("AGENTPROC_CACHE_DIR", "")
    if chosen.lower() in ("off", "0", "none"):
        return None
    if chosen:
        return Path(chosen) / "profiles"
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or "~", ".cache")
    return Path(os.path.expanduser(base)) / "agentproc" / "profiles"


def _entry_name(file: Path) -> str:
    """The entry's file name: a checksum of the path (no hashing library to
    import); what is in the entry decides whether it is a hit."""
    import zlib

    path = os.fsencode(file)
    return f"{zlib.crc32(path):08x}{zlib.adler32(path):08x}.json"


#: The modules whose code decides what a validated profile holds.
_MODEL_MODULES = ("profile.py", "profile_reference.py", "profile_yaml.py", "profile_files.py")


def _model_stamp() -> str:
    """Size and time of the profile model's source files: a changed model (a
    new field, in a checkout or an upgrade that kept the version) is a miss."""
    here = os.path.dirname(__file__)
    parts = []
    for name in _MODEL_MODULES:
        try:
            st = os.stat(os.path.join(here, name))
        except OSError:
            parts.append(f"{name}:-")
            continue
        parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return " ".join(parts)


def _stamp(file: Path, raw: bytes) -> dict[str, str]:
    """What an entry must match to be used: the format, the release and the
    profile model's code, the path and the exact bytes of the file (as
    Latin-1 text, which maps every byte)."""
    return {
        "format": str(FORMAT),
        "version": __version__,
        "model": _model_stamp(),
        "path": os.fsdecode(file),
        "text": raw.decode("latin-1"),
    }


def load_profile_cached(path: str | os.PathLike[str]) -> Profile | ProfileView:
    """:func:`bridge.load_profile`, answered from the cache when the file is unchanged."""
    file = resolve_profile_path(path).resolve()
    raw = read_profile_bytes(file)
    folder = cache_dir()
    entry = folder / _entry_name(file) if folder is not None else None
    stamp = _stamp(file, raw)
    if entry is not None:
        try:
            data = json.loads(entry.read_bytes())
            if data["stamp"] == stamp:
                return ProfileView(data["fields"], data["private"], file)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    from .profile import load_profile_bytes

    profile = load_profile_bytes(raw, file)
    if entry is not None:
        _store(entry, stamp, profile)
    return profile


def _store(entry: Path, stamp: dict[str, str], profile: Profile) -> None:
    private = profile.__pydantic_private__ or {}
    data = {
        "stamp": stamp,
        "fields": profile.model_dump(mode="json"),
        "private": {k: private.get(k, v) for k, v in _PRIVATE_DEFAULTS.items()},
    }
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, entry)
    except OSError:
        pass
