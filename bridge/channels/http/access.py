"""Who is calling, and what they may touch.

A caller proves who they are with ``Authorization: Bearer TOKEN``; the
server hands the app a function from token to :class:`Caller` (it compares
tokens in constant time and never logs them). With no such function the API
is open and everyone is :data:`LOCAL`: the server allows that only on
loopback with no users configured.

Conversations made through the API are keyed ``NAME/RANDOM`` on the ``http``
channel, so a caller's own are those whose key starts with their name; any
other id is answered 404, exactly like one that does not exist, so ids
cannot be probed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from bridge.store.records import Conversation

from ..errors import ApiError

__all__ = ["CHANNEL", "LOCAL", "Access", "Caller", "new_key", "owner_of"]

#: The channel name of conversations made through the HTTP API.
CHANNEL = "http"


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    admin: bool = False


#: Everyone, when the API is open (loopback, no users configured).
LOCAL = Caller("local", admin=True)

Authenticate = Callable[[str], Caller | None]


def new_key(caller: Caller, idempotency_key: str | None = None) -> str:
    """The thread key of a new conversation of ``caller``: random, or, for a
    request that names an ``Idempotency-Key``, derived from it, so that a
    retry opens the conversation the first try made."""
    if idempotency_key:
        digest = hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{caller.name}/k{digest[:20]}"
    return f"{caller.name}/{secrets.token_hex(8)}"


def owner_of(conv: Conversation) -> str | None:
    """The name of the API user a conversation belongs to (None: not an API one)."""
    if conv.key.channel != CHANNEL or "/" not in conv.key.key:
        return None
    return conv.key.key.split("/", 1)[0]


class Access:
    """Turns a request's ``Authorization`` header into a :class:`Caller`."""

    def __init__(self, authenticate: Authenticate | None) -> None:
        self._authenticate = authenticate

    @property
    def open(self) -> bool:
        return self._authenticate is None

    def caller(self, authorization: str | None) -> Caller:
        if self._authenticate is None:
            return LOCAL
        if not authorization:
            raise ApiError(
                "this API needs a bearer token",
                status=401,
                code="unauthenticated",
                hint="send `Authorization: Bearer TOKEN` with the token the bridge's "
                "admin gave you",
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                "the Authorization header is not a bearer token",
                status=401,
                code="unauthenticated",
                hint="send `Authorization: Bearer TOKEN`",
            )
        caller = self._authenticate(token.strip())
        if caller is None:
            raise ApiError(
                "this token is not known to the bridge",
                status=401,
                code="unauthenticated",
                hint="check the token; the bridge's admin can tell you yours",
            )
        return caller

    @staticmethod
    def check_owner(
        caller: Caller, conv: Conversation | None, conversation_id: str
    ) -> Conversation:
        """The conversation, when ``caller`` may touch it; else 404."""
        if conv is None or owner_of(conv) != caller.name:
            raise not_found(conversation_id)
        return conv


def not_found(conversation_id: str) -> ApiError:
    return ApiError(
        f"no conversation {conversation_id!r}",
        status=404,
        code="not_found",
        hint="GET /v1/conversations lists yours",
    )
