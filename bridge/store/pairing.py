"""Pairing: how a stranger on a chat platform becomes someone a channel
answers, with an admin's say-so.

A person the channel does not know writes to the bot; the channel asks the
store for a pairing and tells the person its **code**. An admin approves the
code (``agentproc pairing approve CODE``, from any process sharing the
store); from then on the person is **paired** on that channel. The rules
here are pure (the store runs them in one transaction):

- a code is 8 characters of an alphabet with no look-alikes (no 0/O, 1/I/L),
  valid for :data:`CODE_VALID_SECS`, and names one person on one channel;
- asking again while a code is pending gives the same code back (a person
  who writes twice does not fill the queue), and a paired person is told so;
- at most :data:`MAX_PENDING` codes wait per channel: a flood of strangers
  cannot bury the real requests, they are refused until some expire;
- a decision is final: an approved or denied code cannot be decided again,
  and an expired one cannot be approved.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from .records import PAIRING_APPROVED, PAIRING_DENIED, PAIRING_PENDING, Pairing

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "CODE_VALID_SECS",
    "MAX_PENDING",
    "decide",
    "is_live",
    "normal_code",
    "request",
]

#: Letters and digits a person reads off a phone and types without doubt.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
#: How long a code can be approved.
CODE_VALID_SECS = 3600.0
#: Codes waiting at once per channel.
MAX_PENDING = 5


def normal_code(text: str) -> str:
    """A code as typed (any case, spaces or dashes) in its stored form."""
    return "".join(c for c in text.upper() if c.isalnum())


def is_live(p: Pairing, now: float) -> bool:
    """Whether the pairing still counts: approved, or pending and not expired."""
    return p.status == PAIRING_APPROVED or (p.status == PAIRING_PENDING and now < p.expires_at)


def request(
    mine: list[Pairing],
    pending_in_channel: int,
    *,
    channel: str,
    user_id: str,
    name: str,
    now: float,
    taken: set[str] | frozenset[str] = frozenset(),
) -> tuple[Pairing | None, bool]:
    """What a request from ``user_id`` gives: (the pairing to tell them about,
    whether it is new and must be saved). ``mine`` are their pairings on the
    channel; ``pending_in_channel`` how many live codes wait there. (None,
    False) when the channel has too many waiting."""
    for p in mine:
        if p.status == PAIRING_APPROVED:
            return p, False
    for p in mine:
        if is_live(p, now):
            return p, False
    if pending_in_channel >= MAX_PENDING:
        return None, False
    code = _new_code(taken)
    return (
        Pairing(
            code=code,
            channel=channel,
            user_id=user_id,
            name=name,
            status=PAIRING_PENDING,
            created_at=now,
            expires_at=now + CODE_VALID_SECS,
        ),
        True,
    )


def decide(p: Pairing | None, *, approve: bool, by: str, now: float) -> Pairing | None:
    """The pairing after an admin's decision, or None when there is nothing
    to decide (no such code, decided already, or expired)."""
    if p is None or p.status != PAIRING_PENDING or now >= p.expires_at:
        return None
    status = PAIRING_APPROVED if approve else PAIRING_DENIED
    return replace(p, status=status, decided_by=by, decided_at=now)


def _new_code(taken: set[str] | frozenset[str]) -> str:
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if code not in taken:
            return code
