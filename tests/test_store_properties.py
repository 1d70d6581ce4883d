"""hypothesis: any interleaving of the store's writes keeps the log sound.

Two conversations, two dispatcher slots whose processes can die (the fake
clock jumps past the lease, and the slot comes back under a new owner name),
and every write a bridge makes, in any order. A write the rules refuse
(a lost lease, a turn still open, messages out of order) must write nothing.
After every step, and at the end once every owner is dead and ``recover``
ran, the log must hold together: dense ids, one turn open at a time, turn
numbers without gaps, each turn closed exactly once, each message taken at
most once and otherwise dropped or still pending, and the counts an
admission rule sees matching the log.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st
from store_contract import ECHO, LEASE, FakeClock, outcome

from bridge.store.base import Store
from bridge.store.errors import LeaseLost
from bridge.store.memory import MemoryStore
from bridge.store.records import (
    CONVERSATION_CANCEL,
    MESSAGE,
    STATUSES,
    TURN_COMPLETED,
    TURN_PARTIAL,
    TURN_QUEUED,
    Conversation,
    ConversationKey,
    Event,
    Load,
    NewMessage,
)
from bridge.store.sqlite import SQLiteStore

KEYS = (ConversationKey("terminal", "a", ECHO), ConversationKey("http", "b", ECHO))

conv = st.sampled_from([0, 0, 0, 1])  # mostly one conversation, so turns get run
#: Who writes: mostly the lease holder (so turns get run), sometimes either slot.
who = st.sampled_from(["holder", "holder", "holder", 0, 1])
slot = st.sampled_from([0, 1])
#: Each step's arguments after the conversation.
ARGS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "message": st.tuples(st.sampled_from(["al", "bo", ""])),
    "claim": st.tuples(slot),
    "run": st.tuples(slot),
    "take": st.tuples(who, st.sampled_from([1, 1, 2, 3, 0])),
    "start": st.tuples(who),
    "partial": st.tuples(who),
    "complete": st.tuples(who, st.sampled_from(STATUSES), st.sampled_from([None, "s1"])),
    "heartbeat": st.tuples(who),
    "release": st.tuples(who),
    "cancel": st.tuples(st.booleans()),
    "reset": st.tuples(),
    "die": st.tuples(slot),
    "recover": st.tuples(),
    "tick": st.tuples(st.floats(0, LEASE / 2)),
}
#: How often each step comes: the steps of a turn often, so runs hold whole
#: turns between the disruptions.
WEIGHTS = {"message": 4, "run": 3, "take": 2, "start": 2, "partial": 2, "complete": 4}
kinds = [kind for kind in ARGS for _ in range(WEIGHTS.get(kind, 1))]
step = st.sampled_from(kinds).flatmap(
    lambda kind: st.tuples(st.just(kind), conv, ARGS[kind]).map(lambda t: (t[0], t[1], *t[2]))
)
steps = st.lists(step, min_size=20, max_size=80)
keep = st.sampled_from([1, 2, 200])


def check_log(conv: Conversation, events: list[Event], *, closed: bool = False) -> set[int]:
    """The log's promises for one conversation; returns its active messages."""
    assert [e.id for e in events] == list(range(conv.first_event, conv.last_event + 1))
    messages = {e.id: e for e in events if e.type == MESSAGE}
    taken: list[int] = []
    dropped: list[int] = []
    open_turn = 0
    seen_turns: list[int] = []
    completed: dict[int, int] = {}
    for e in events:
        if e.type == TURN_QUEUED:
            assert open_turn == 0, f"turn {e.turn} queued while {open_turn} is open"
            assert not seen_turns or e.turn == seen_turns[-1] + 1
            seen_turns.append(e.turn)
            open_turn = e.turn
            taken += e.data["messages"]
        elif e.type == TURN_COMPLETED:
            completed[e.turn] = completed.get(e.turn, 0) + 1
            if e.turn in seen_turns:
                assert open_turn == e.turn
                open_turn = 0
        elif e.type == CONVERSATION_CANCEL:
            dropped += e.data["dropped"]
            # A trimmed turn's tail can outlive its head: the cut falls at the
            # oldest kept turn's first message, which may predate it.
            if e.turn == 0 or e.turn in seen_turns:
                assert e.turn == open_turn
        elif e.turn and e.turn in seen_turns:
            assert e.turn == open_turn, f"{e.type} of turn {e.turn} outside it"
    assert len(taken) == len(set(taken)), "a message was taken twice"
    assert not set(taken) & set(dropped), "a message was taken and dropped"
    pending = {m for m in messages if m > conv.consumed}
    assert pending.isdisjoint(taken) and pending.isdisjoint(dropped)
    assert set(messages) == (set(taken) | set(dropped) | pending) & set(messages)
    assert conv.running_turn == open_turn
    if seen_turns:
        assert seen_turns[-1] == conv.turn_count, "turn numbers run 1..turn_count"
    for turn in seen_turns:
        if turn != open_turn:
            assert completed.get(turn) == 1, f"turn {turn} closed {completed.get(turn)} times"
    if closed:
        assert open_turn == 0
    running: set[int] = set()
    if open_turn:
        queued = next(e for e in events if e.type == TURN_QUEUED and e.turn == open_turn)
        running = set(queued.data["messages"])
    return pending | running


async def play(store: Store, clock: FakeClock, plan: list[tuple[Any, ...]]) -> None:
    convs = [(await store.open(k)).id for k in KEYS]
    generation = [0, 0]

    def owner(n: int | str, c: Conversation) -> str:
        """A slot's current owner name; "holder" is the slot holding ``c``."""
        names = [f"slot{i}-{generation[i]}" for i in (0, 1)]
        if n == "holder":
            return c.lease_owner if c.lease_owner in names else names[0]
        return names[int(n)]

    async def state() -> list[tuple[Conversation, list[Event]]]:
        out = []
        for cid in convs:
            c = await store.get(cid)
            assert c is not None
            out.append((c, await store.read(cid, limit=10_000)))
        return out

    for kind, n, *args in plan:
        cid = convs[n]
        before = await store.version()
        logs = await state()
        c, events = logs[n]
        try:
            if kind == "message":
                user = args[0]
                active = [check_log(x, ev) for x, ev in logs]
                users = [
                    {e.id: e.data["from_user"] for e in ev if e.type == MESSAGE} for _, ev in logs
                ]
                waiting = {m for m in active[n] if m > c.consumed}
                expected = Load(
                    running=bool(c.running_turn),
                    pending=len(waiting),
                    pending_from_user=sum(users[n][m] == user for m in waiting),
                    user_active=sum(
                        u[m] == user for a, u in zip(active, users, strict=True) for m in a
                    ),
                    total_active=sum(len(a) for a in active),
                )
                seen: list[Load] = []
                await store.add_message(cid, NewMessage("m", from_user=user), admit=_record(seen))
                assert seen == [expected]
            elif kind == "claim":
                await store.claim(cid, owner(args[0], c), lease_secs=LEASE)
            elif kind == "run":  # what a dispatcher does: claim, take what waits, start
                name = owner(args[0], c)
                got = await store.claim(cid, name, lease_secs=LEASE)
                if got is not None and got.pending and not got.conversation.running_turn:
                    ids = [e.id for e in got.pending]
                    taken, _ = await store.take(cid, name, ids, text="t")
                    await store.start(cid, name, taken.running_turn, taken.session_id)
            elif kind == "heartbeat":
                await store.heartbeat(cid, owner(args[0], c), lease_secs=LEASE)
            elif kind == "release":
                await store.release(cid, owner(args[0], c))
            elif kind == "take":
                pending = [e.id for e in events if e.type == MESSAGE and e.id > c.consumed]
                await store.take(cid, owner(args[0], c), pending[: args[1]], text="t")
            elif kind == "start":
                await store.start(cid, owner(args[0], c), c.running_turn or 1, "")
            elif kind == "partial":
                data = {"text": "x", "offset": 0}
                await store.append(cid, owner(args[0], c), c.running_turn or 1, TURN_PARTIAL, data)
            elif kind == "complete":
                await store.complete(
                    cid,
                    owner(args[0], c),
                    c.running_turn or 1,
                    outcome(args[1]),
                    captured_session=args[2],
                    epoch=c.reset_epoch,
                )
            elif kind == "cancel":
                await store.cancel(cid, drop_pending=args[0])
            elif kind == "reset":
                await store.reset(cid)
            elif kind == "die":  # its lease runs out; it comes back as a new process
                clock.advance(LEASE + 1)
                generation[args[0]] += 1
            elif kind == "recover":
                await store.recover(cid)
            elif kind == "tick":
                clock.advance(args[0])
        except (LeaseLost, ValueError):
            assert await store.version() == before, f"{kind} was refused but wrote"
        for x, ev in await state():
            check_log(x, ev)

    clock.advance(LEASE + 1)  # every owner is dead
    for cid in convs:
        await store.recover(cid)
    for x, ev in await state():
        check_log(x, ev, closed=True)


def _record(seen: list[Load]) -> Callable[[Conversation, Load], None]:
    def admit(_: Conversation, load: Load) -> None:
        seen.append(load)

    return admit


@settings(max_examples=60, deadline=None)
@given(plan=steps, keep_turns=keep)
def test_memory_store_keeps_the_log_sound(plan: list[tuple[Any, ...]], keep_turns: int) -> None:
    clock = FakeClock()
    anyio.run(play, MemoryStore(keep_turns=keep_turns, clock=clock), clock, plan)


@settings(max_examples=15, deadline=None)
@given(plan=steps, keep_turns=keep)
def test_sqlite_store_keeps_the_log_sound(plan: list[tuple[Any, ...]], keep_turns: int) -> None:
    clock = FakeClock()

    async def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "sessions.db"
            async with SQLiteStore(path, keep_turns=keep_turns, clock=clock) as store:
                await play(store, clock, plan)

    anyio.run(run)
