"""Who a chat channel answers: the access rules of DESIGN.md section 6, pure.

A channel worker asks :func:`decide` about each inbound message, with what
it knows: the channel's policy, whether the sender is a user named in the
config (by their id on this platform) or was paired by an admin, and where
the message was written. The answer says what to do; nothing here does I/O.

Fails closed. Under every policy but ``open`` a stranger's message never
reaches an agent:

=============  =================================================================
``pairing``    (the default) a stranger in a private chat is given a pairing
               code to pass to an admin; in a group they are told to write
               privately
``allowlist``  only the config's users (and admins); a stranger is told their id
``open``       anyone; only when the config says so, since an agent with tools
               answering anyone is remote code execution
``disabled``   nobody; nothing is answered
=============  =================================================================

In groups the bot answers only messages that mention it or reply to it,
unless the channel is configured to read every message. ``/whoami`` is
answered under every policy but ``disabled``, so a stranger can learn the
id an admin needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

__all__ = ["POLICIES", "Action", "Decision", "Sender", "Where", "decide"]

Policy = Literal["pairing", "allowlist", "open", "disabled"]
POLICIES: tuple[Policy, ...] = ("pairing", "allowlist", "open", "disabled")


class Action(Enum):
    ANSWER = "answer"  # run it (a command or a message for the agent)
    IGNORE = "ignore"  # say nothing
    PAIR = "pair"  # give a pairing code (request_pairing) and say how to use it
    TELL_ID = "tell_id"  # say who they are and that they are not let in
    GO_PRIVATE = "go_private"  # in a group: ask them to write privately to pair


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote: their id on the platform and how to show them; ``user``
    is the config's user with this platform id (None: not one), ``admin``
    theirs; ``paired`` whether an admin approved them on this channel."""

    platform_id: str
    display: str
    user: str | None = None
    admin: bool = False
    paired: bool = False

    @property
    def name(self) -> str:
        """The name turns and approvals record: the config's user name, or
        ``id:PLATFORM_ID`` for someone let in by pairing or an open channel."""
        return self.user or f"id:{self.platform_id}"


@dataclass(frozen=True, slots=True)
class Where:
    """Where the message was written: a private chat or a group, and
    whether it mentions the bot or replies to one of its messages."""

    private: bool
    addressed: bool = False  # mentions the bot or replies to it


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    #: For ANSWER: whether the sender is an admin (may answer anyone's
    #: approvals, run admin commands).
    admin: bool = False


def decide(
    policy: Policy,
    sender: Sender,
    where: Where,
    *,
    command: str = "",
    groups_read_all: bool = False,
) -> Decision:
    """What to do with one inbound message (``command``: its chat command
    without the slash, e.g. ``whoami``; "" for a plain message)."""
    if policy == "disabled":
        return Decision(Action.IGNORE)
    if not where.private and not where.addressed and not groups_read_all:
        return Decision(Action.IGNORE)  # group chatter not meant for the bot
    let_in = sender.user is not None or sender.admin or sender.paired or policy == "open"
    if let_in:
        return Decision(Action.ANSWER, admin=sender.admin)
    if command == "whoami":
        return Decision(Action.TELL_ID)
    if not where.private and not where.addressed:
        # Read only because the group is read whole: a stranger chatting
        # there did not ask the bot anything, so it says nothing (or it
        # would answer every line they write).
        return Decision(Action.IGNORE)
    if policy == "pairing":
        return Decision(Action.PAIR if where.private else Action.GO_PRIVATE)
    return Decision(Action.TELL_ID)
