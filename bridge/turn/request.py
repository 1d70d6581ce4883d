"""A turn's inputs, written down once: :class:`TurnRequest`.

What one turn is asked to do, apart from the profile that runs it and the
callbacks that watch it: the message, the session to resume, who sent it,
its attachments, and the caller's overrides (working directory, extra
environment, timeout, streaming). :func:`~bridge.turn.launch.build_plan`
expands a profile and a request into a launch plan; the conversation log
stores requests, and the HTTP API accepts them, in the form of
:meth:`TurnRequest.to_dict`.

The dict form is plain JSON (strings, numbers, booleans, null, arrays and
objects) and round-trips exactly: ``TurnRequest.from_dict(json.loads(
json.dumps(r.to_dict()))) == r``. :meth:`TurnRequest.from_dict` checks the
shape and the types, and raises :class:`ValueError` naming the field at
fault; the rules of a turn itself (a NUL in the message, an empty turn, a
timeout that is not positive) are :func:`~bridge.turn.launch.build_plan`'s,
which reports them as the turn's failure.

Standard library only: ``agentproc run`` builds one on every start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agentproc import wire
from agentproc.wire import Attachment

__all__ = ["REQUEST_KEYS", "TurnRequest"]

#: The keys of a request's dict form, in the order :meth:`TurnRequest.to_dict`
#: writes them. Only ``message`` is required by :meth:`TurnRequest.from_dict`.
REQUEST_KEYS = (
    "message",
    "session_id",
    "session_name",
    "from_user",
    "attachments",
    "cwd",
    "env",
    "timeout",
    "streaming",
)

EnvInput = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True, init=False)
class TurnRequest:
    """One turn's inputs. Frozen, hashable, and serialisable with :meth:`to_dict`.

    - ``message``: the user's text (may be ``""`` when there are attachments);
    - ``session_id``: the agent's session to resume (``""``: a new one);
    - ``session_name``: the name of the conversation's session slot;
    - ``from_user``: who sent the message;
    - ``attachments``: the turn's attachments, in order;
    - ``cwd``: the working directory, overriding the profile's (``None``: the profile's);
    - ``env``: extra environment variables, taken literally, after the profile's
      ``env`` (the CLI's ``--env``), as ``(name, value)`` pairs; a mapping or
      pairs may be given, a repeated name keeps its last value;
    - ``timeout``: seconds, overriding the profile's ``timeout_secs``;
    - ``streaming``: ``False`` turns streaming off (``--no-stream``), ``None``
      keeps the profile's setting.
    """

    message: str
    session_id: str
    session_name: str
    from_user: str
    attachments: tuple[Attachment, ...]
    cwd: str | None
    env: tuple[tuple[str, str], ...]
    timeout: float | None
    streaming: bool | None

    def __init__(
        self,
        message: str,
        *,
        session_id: str = "",
        session_name: str = wire.DEFAULT_SESSION_NAME,
        from_user: str = "",
        attachments: Iterable[Attachment] = (),
        cwd: str | os.PathLike[str] | None = None,
        env: EnvInput | None = None,
        timeout: float | None = None,
        streaming: bool | None = None,
    ) -> None:
        put = object.__setattr__
        put(self, "message", message)
        put(self, "session_id", session_id)
        put(self, "session_name", session_name)
        put(self, "from_user", from_user)
        put(self, "attachments", tuple(attachments))
        put(self, "cwd", None if cwd is None else os.fspath(cwd))
        put(self, "env", tuple(dict(env).items()) if env else ())
        put(self, "timeout", timeout)
        put(self, "streaming", streaming)

    def env_dict(self) -> dict[str, str]:
        """The extra environment as a new dict."""
        return dict(self.env)

    def to_dict(self) -> dict[str, Any]:
        """The request as plain JSON data, every key of :data:`REQUEST_KEYS` present."""
        return {
            "message": self.message,
            "session_id": self.session_id,
            "session_name": self.session_name,
            "from_user": self.from_user,
            "attachments": [a.to_dict() for a in self.attachments],
            "cwd": self.cwd,
            "env": dict(self.env),
            "timeout": self.timeout,
            "streaming": self.streaming,
        }

    @classmethod
    def from_dict(cls, data: object) -> TurnRequest:
        """Build a request from decoded JSON (what :meth:`to_dict` writes).

        ``message`` is required; a missing optional key takes its default.
        Raises :class:`ValueError` naming the key at fault: not an object, an
        unknown key, a missing message, or a value of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a turn request must be a JSON object, not {_kind(data)}")
        unknown = [key for key in data if key not in REQUEST_KEYS]
        if unknown:
            raise ValueError(
                f"unknown key {unknown[0]!r} in a turn request; "
                f"the keys are {', '.join(REQUEST_KEYS)}"
            )
        if "message" not in data:
            raise ValueError("a turn request needs 'message' (a string; \"\" with attachments)")
        return cls(
            _string(data, "message"),
            session_id=_string(data, "session_id", ""),
            session_name=_string(data, "session_name", wire.DEFAULT_SESSION_NAME),
            from_user=_string(data, "from_user", ""),
            attachments=_attachments(data.get("attachments", [])),
            cwd=_optional_string(data, "cwd"),
            env=_env(data.get("env", {})),
            timeout=_timeout(data.get("timeout")),
            streaming=_streaming(data.get("streaming")),
        )


# --- checking the dict form -----------------------------------------------------------


def _kind(value: object) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _string(data: Mapping[str, object], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"turn request '{key}' must be a string, not {_kind(value)}")
    return value


def _optional_string(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"turn request '{key}' must be a string or null, not {_kind(value)}")
    return value


def _attachments(value: object) -> tuple[Attachment, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(
            f"turn request 'attachments' must be an array of objects, not {_kind(value)}"
        )
    out = []
    for index, item in enumerate(value):
        try:
            out.append(Attachment.from_dict(item))
        except ValueError as exc:
            raise ValueError(f"turn request 'attachments[{index}]': {exc}") from None
    return tuple(out)


def _env(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"turn request 'env' must be an object of strings (NAME: value), not {_kind(value)}"
        )
    for name, item in value.items():
        if not isinstance(name, str):
            raise ValueError(f"turn request 'env' has a name that is {_kind(name)}, not a string")
        if not isinstance(item, str):
            raise ValueError(f"turn request 'env[{name!r}]' must be a string, not {_kind(item)}")
    return dict(value)


def _timeout(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"turn request 'timeout' must be a number of seconds or null, not {_kind(value)}"
        )
    return value


def _streaming(value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(
            f"turn request 'streaming' must be true, false or null, not {_kind(value)}"
        )
    return value
