"""Lease owners: who holds a conversation, and whether that process still runs.

An owner is ``host:pid:nonce`` (:func:`new_owner`). A lease is live while it
has not expired and, when its owner ran on this host, while that process
exists; so a bridge killed with ``kill -9`` frees its conversations at once
for the next process on the same machine, and after the lease's time for the
others.
"""

from __future__ import annotations

import os
import secrets
import socket

from .records import Conversation

__all__ = ["lease_is_live", "new_owner", "owner_alive"]


def new_owner() -> str:
    """A lease owner name for this process: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process named by ``owner`` still runs: True or False when
    it ran on this host, None (unknown) for another host or a name this
    module did not make."""
    host, sep, rest = owner.partition(":")
    pid_text, sep2, _ = rest.partition(":")
    if not sep or not sep2 or not pid_text.isdigit() or host != socket.gethostname():
        return None
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def lease_is_live(conv: Conversation, now: float) -> bool:
    """Someone holds the conversation: a lease not yet expired whose owner
    is not known to be dead."""
    if not conv.lease_owner or conv.lease_expires <= now:
        return False
    return owner_alive(conv.lease_owner) is not False
