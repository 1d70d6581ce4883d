"""The contract every store keeps: one suite, run against each implementation.

A store's test module subclasses :class:`StoreContract` and gives it one
fixture, ``make_store``: a callable taking ``clock`` and ``keep_turns`` (and
nothing else) and returning a fresh, empty store. Everything below then runs
on that store; PostgreSQL later adds only its fixture.

Time is a fake clock the tests move by hand, so lease expiry needs no sleep.
A dead lease owner is a real one: the owner name of a process that was
started and has exited.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from bridge.store import rules
from bridge.store.base import Store
from bridge.store.errors import LeaseLost, NotFound, StateError
from bridge.store.owners import owner_alive
from bridge.store.pairing import ALPHABET, CODE_LENGTH, CODE_VALID_SECS, MAX_PENDING
from bridge.store.reading import transcript_of
from bridge.store.records import (
    CONVERSATION_CANCEL,
    CONVERSATION_RESET,
    DELIVERY_EDITED,
    DELIVERY_FINISHED,
    DELIVERY_POSTED,
    MESSAGE,
    STATUS_ABANDONED,
    STATUS_ERROR,
    STATUS_OK,
    TURN_COMPLETED,
    TURN_PARTIAL,
    TURN_PERMISSION,
    TURN_PERMISSION_ANSWERED,
    TURN_QUEUED,
    TURN_STARTED,
    Conversation,
    ConversationKey,
    Event,
    Load,
    NewMessage,
    Route,
)

T0 = 1_000_000.0
LEASE = 30.0
ECHO = Route("bundled:echo", "/work/app", "echo")
KEY = ConversationKey("terminal", "alice", ECHO)
StoreFactory = Callable[..., Store]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs


def outcome(status: str = STATUS_OK, **fields: Any) -> dict[str, Any]:
    """A turn.completed payload with every field."""
    data: dict[str, Any] = {
        "status": status,
        "reply": "done",
        "session_id": "",
        "exit_code": 0 if status == STATUS_OK else 1,
        "error": None if status == STATUS_OK else "it failed",
        "hint": "",
        "warnings": [],
        "timed_out": False,
        "duration_ms": 12,
    }
    data.update(fields)
    return data


def dead_owner() -> str:
    """An owner name, made the way owners.new_owner makes one, of a process
    on this host that has exited (and been waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    owner = f"{socket.gethostname()}:{child.pid}:dead"
    assert owner_alive(owner) is False
    return owner


async def take_turn(
    store: Store, conv_id: str, owner: str = "o1", text: str = "hi", user: str = ""
) -> tuple[Conversation, Event]:
    """A message, claimed and taken into a turn that has started."""
    await store.add_message(conv_id, NewMessage(text, from_user=user))
    claim = await store.claim(conv_id, owner, lease_secs=LEASE)
    assert claim is not None
    conv, queued = await store.take(
        conv_id,
        owner,
        [e.id for e in claim.pending],
        text=" ".join(e.data["text"] for e in claim.pending),
    )
    await store.start(conv_id, owner, conv.running_turn, conv.session_id)
    return conv, queued


async def whole_turn(
    store: Store, conv_id: str, owner: str = "o1", *, session: str | None = None, **fields: Any
) -> Conversation:
    conv, _ = await take_turn(store, conv_id, owner)
    done, _ = await store.complete(
        conv_id,
        owner,
        conv.running_turn,
        outcome(**fields),
        captured_session=session,
        epoch=conv.reset_epoch,
    )
    return done


class StoreContract:
    """The tests; see the module docstring."""

    pytestmark: ClassVar = [pytest.mark.anyio]

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    async def store(self, make_store: StoreFactory, clock: FakeClock) -> AsyncIterator[Store]:
        async with make_store(clock=clock, keep_turns=rules.DEFAULT_KEEP_TURNS) as s:
            yield s

    @pytest.fixture
    async def conv(self, store: Store) -> Conversation:
        return await store.open(KEY)

    # --- conversations ------------------------------------------------------------------

    async def test_keep_turns_is_checked(self, make_store: StoreFactory, clock: FakeClock) -> None:
        for bad in (0, -1, 1.5, True):
            with pytest.raises(ValueError, match="keep_turns"):
                make_store(clock=clock, keep_turns=bad)

    async def test_an_empty_store(self, store: Store) -> None:
        assert store.read_only is False
        assert await store.conversations() == []
        assert await store.lookup(KEY) is None
        assert await store.get("c0000") is None
        assert await store.find("terminal:alice@echo") == []
        assert await store.read("c0000") == []
        assert await store.transcript("c0000") == []
        assert await store.get_state("c0000") is None
        assert await store.acked("http", "c0000") == 0
        assert await store.delete("c0000") is False
        assert await store.conversations() == [], "reads must not create anything"

    async def test_writes_to_an_unknown_conversation_raise_not_found(self, store: Store) -> None:
        writes = [
            store.add_message("nope", NewMessage("hi")),
            store.cancel("nope"),
            store.reset("nope"),
            store.answer("nope", 1, allow=True),
            store.ack("http", "nope", 1),
            store.set_state("nope", {"a": 1}),
            store.claim("nope", "o1", lease_secs=LEASE),
            store.recover("nope"),
            store.heartbeat("nope", "o1", lease_secs=LEASE),
            store.release("nope", "o1"),
            store.take("nope", "o1", [1], text="hi"),
            store.start("nope", "o1", 1, ""),
            store.append("nope", "o1", 1, TURN_PARTIAL, {"text": "x", "offset": 0}),
            store.complete("nope", "o1", 1, outcome(), captured_session=None, epoch=0),
        ]
        for write in writes:
            with pytest.raises(NotFound, match="nope"):
                await write
        assert await store.conversations() == []

    async def test_open_creates_once(self, store: Store, clock: FakeClock) -> None:
        conv = await store.open(KEY, session_name="work")
        assert conv.id.startswith("c") and len(conv.id) == 21
        assert (conv.key, conv.session_name, conv.turn_count) == (KEY, "work", 0)
        assert (conv.created_at, conv.updated_at, conv.last_event, conv.first_event) == (
            T0,
            T0,
            0,
            1,
        )
        clock.advance(5)
        assert await store.open(KEY) == conv
        assert await store.lookup(KEY) == conv
        assert await store.get(conv.id) == conv
        assert await store.conversations() == [conv]

    async def test_a_route_is_profile_and_folder(self, store: Store) -> None:
        here = await store.open(KEY)
        there = await store.open(
            ConversationKey("terminal", "alice", Route(ECHO.profile, "/other", "echo"))
        )
        other = await store.open(
            ConversationKey("terminal", "alice", Route("/p/echo.yaml", ECHO.cwd, "echo"))
        )
        renamed = await store.open(
            ConversationKey("terminal", "alice", Route(ECHO.profile, ECHO.cwd, "x"))
        )
        assert len({here.id, there.id, other.id}) == 3
        assert renamed.id == here.id, "the display name is not part of the identity"
        assert here.label == there.label == other.label == "terminal:alice@echo"

    async def test_find_by_id_label_or_prefix(self, store: Store) -> None:
        odd = ConversationKey("slack", "T1:C2@x:y", Route("/p/a", "/w", "team:bot@v2"))
        a = await store.open(odd)
        b = await store.open(
            ConversationKey(odd.channel, odd.key, Route("/p/b", "/w", odd.route.name))
        )
        c = await store.open(KEY)
        assert a.label == "slack:T1:C2@x:y@team:bot@v2"
        assert await store.find(a.id) == [a]
        assert sorted(x.id for x in await store.find(a.label)) == sorted([a.id, b.id])
        assert await store.find("terminal:alice@echo") == [c]
        assert await store.find(c.id[:8]) == [c]
        assert await store.find(c.id[:5]) == [], "a prefix needs 6 characters"
        assert await store.find("slack:T1:C2@x") == []
        assert await store.find("") == []

    async def test_find_by_the_route_profile_when_unnamed(self, store: Store) -> None:
        conv = await store.open(ConversationKey("http", "k", Route("/p/agent.yaml", "/w")))
        assert conv.label == "http:k@/p/agent.yaml"
        assert await store.find("http:k@/p/agent.yaml") == [conv]

    async def test_conversations_most_recent_first(self, store: Store, clock: FakeClock) -> None:
        first = await store.open(KEY)
        clock.advance(1)
        second = await store.open(ConversationKey("http", "bob", ECHO))
        clock.advance(1)
        await store.reset(first.id)  # activity: a reset (or a turn), not a waiting message
        listed = await store.conversations()
        assert [c.id for c in listed] == [first.id, second.id]
        assert [c.id for c in await store.conversations(channel="http")] == [second.id]
        assert [c.id for c in await store.conversations(limit=1)] == [first.id]
        assert await store.conversations(limit=0) == []

    async def test_open_adopts_a_carried_over_conversation(self, store: Store) -> None:
        # What the SQLite upgrade makes of a first-release conversation: the
        # route's profile is the old profile name, its folder unknown.
        old_key = ConversationKey("terminal", "alice", Route("echo", "", "echo"))
        old = await store.open(old_key)
        await whole_turn(store, old.id, session="s-old")
        await store.release(old.id, "o1")
        assert await store.lookup(KEY) is None, "lookup does not adopt"

        adopted = await store.open(KEY)
        assert adopted.id == old.id
        assert (adopted.key, adopted.key.route.name) == (KEY, "echo")
        assert (adopted.session_id, adopted.turn_count) == ("s-old", 1)
        assert await store.lookup(KEY) == adopted
        assert await store.lookup(old_key) is None
        assert len(await store.transcript(adopted.id)) == 1

        elsewhere = await store.open(
            ConversationKey("terminal", "alice", Route(ECHO.profile, "/b", "echo"))
        )
        assert elsewhere.id != old.id, "only the first matching open adopts it"
        assert elsewhere.session_id == ""

    # --- messages ------------------------------------------------------------------------

    async def test_message_ids_are_dense_and_increasing(
        self, store: Store, conv: Conversation, clock: FakeClock
    ) -> None:
        ids = []
        for n in range(5):
            clock.advance(1)
            event, again = await store.add_message(
                conv.id, NewMessage(f"m{n}", attachments=({"url": "u"},), from_user="al")
            )
            assert again is False
            assert (event.type, event.turn, event.at, event.conversation) == (
                MESSAGE,
                0,
                T0 + n + 1,
                conv.id,
            )
            assert event.data == {
                "text": f"m{n}",
                "attachments": [{"url": "u"}],
                "from_user": "al",
                "platform_id": "",
            }
            ids.append(event.id)
        assert ids == [1, 2, 3, 4, 5]
        now = await store.get(conv.id)
        assert now is not None and (now.last_event, now.updated_at, now.consumed) == (5, T0, 0)
        assert [e.id for e in await store.read(conv.id)] == ids

    async def test_a_redelivery_writes_nothing(self, store: Store, conv: Conversation) -> None:
        first, _ = await store.add_message(conv.id, NewMessage("hi", platform_id="tg-7"))
        version = await store.version()
        calls: list[Load] = []
        again, redelivered = await store.add_message(
            conv.id,
            NewMessage("hi (edited)", platform_id="tg-7"),
            admit=lambda c, load: calls.append(load),
        )
        assert redelivered is True and again == first
        assert calls == [], "admit is not asked about a redelivery"
        assert await store.version() == version
        assert [e.id for e in await store.read(conv.id)] == [first.id]
        # Another id, no id, or the same id in another conversation: new messages.
        other = await store.open(ConversationKey("http", "x", ECHO))
        assert (await store.add_message(other.id, NewMessage("hi", platform_id="tg-7")))[1] is False
        assert (await store.add_message(conv.id, NewMessage("hi", platform_id="tg-8")))[1] is False
        assert (await store.add_message(conv.id, NewMessage("hi")))[1] is False
        assert (await store.add_message(conv.id, NewMessage("hi")))[1] is False
        assert len(await store.read(conv.id)) == 4

    async def test_admit_sees_the_load_inside_the_write(
        self, store: Store, conv: Conversation
    ) -> None:
        other = await store.open(ConversationKey("http", "x", ECHO))
        await take_turn(store, conv.id, user="al")  # al: 1 running here
        await store.add_message(conv.id, NewMessage("a", from_user="al"))
        await store.add_message(conv.id, NewMessage("b", from_user="bo"))
        await store.add_message(other.id, NewMessage("c", from_user="al"))
        seen: list[tuple[str, Load]] = []

        def admit(c: Conversation, load: Load) -> None:
            seen.append((c.id, load))

        await store.add_message(conv.id, NewMessage("d", from_user="al"), admit=admit)
        assert seen == [
            (
                conv.id,
                Load(running=True, pending=2, pending_from_user=1, user_active=3, total_active=4),
            )
        ]
        seen.clear()
        await store.add_message(other.id, NewMessage("e", from_user="bo"), admit=admit)
        assert seen == [
            (
                other.id,
                Load(running=False, pending=1, pending_from_user=0, user_active=1, total_active=5),
            )
        ]
        seen.clear()
        admit.needs_totals = False  # type: ignore[attr-defined]
        await store.add_message(conv.id, NewMessage("f", from_user="al"), admit=admit)
        (_, load) = seen[0]
        assert (load.running, load.pending, load.pending_from_user) == (True, 3, 2), (
            "the conversation's own counts, whether or not the totals are counted"
        )

    async def test_an_admit_that_refuses_writes_nothing(
        self, store: Store, conv: Conversation
    ) -> None:
        await store.add_message(conv.id, NewMessage("a"))
        version = await store.version()

        def refuse(c: Conversation, load: Load) -> None:
            raise RuntimeError(f"busy: {load.pending} waiting")

        with pytest.raises(RuntimeError, match="busy: 1 waiting"):
            await store.add_message(conv.id, NewMessage("b", platform_id="p"), admit=refuse)
        assert await store.version() == version
        assert len(await store.read(conv.id)) == 1
        after = await store.get(conv.id)
        assert after is not None and after.last_event == 1
        # The refused platform id was not remembered either.
        assert (await store.add_message(conv.id, NewMessage("b", platform_id="p")))[1] is False

    # --- leases ----------------------------------------------------------------------------

    async def test_a_live_lease_is_refused(
        self, store: Store, conv: Conversation, clock: FakeClock
    ) -> None:
        mine = await store.claim(conv.id, "o1", lease_secs=LEASE)
        assert mine is not None
        assert (mine.conversation.lease_owner, mine.conversation.lease_expires) == (
            "o1",
            T0 + LEASE,
        )
        assert await store.claim(conv.id, "o2", lease_secs=LEASE) is None
        clock.advance(LEASE - 1)
        assert await store.claim(conv.id, "o2", lease_secs=LEASE) is None
        clock.advance(1)  # expired: anyone may take it
        theirs = await store.claim(conv.id, "o2", lease_secs=LEASE)
        assert theirs is not None and theirs.conversation.lease_owner == "o2"
        assert theirs.closed == ()
        assert await store.heartbeat(conv.id, "o1", lease_secs=LEASE) is False

    async def test_the_same_owner_renews(
        self, store: Store, conv: Conversation, clock: FakeClock
    ) -> None:
        await store.claim(conv.id, "o1", lease_secs=LEASE)
        clock.advance(10)
        again = await store.claim(conv.id, "o1", lease_secs=LEASE)
        assert again is not None and again.conversation.lease_expires == T0 + 10 + LEASE
        clock.advance(10)
        assert await store.heartbeat(conv.id, "o1", lease_secs=5) is True
        now = await store.get(conv.id)
        assert now is not None and now.lease_expires == T0 + 25

    async def test_a_claim_lists_the_pending_messages(
        self, store: Store, conv: Conversation
    ) -> None:
        a, _ = await store.add_message(conv.id, NewMessage("a"))
        b, _ = await store.add_message(conv.id, NewMessage("b"))
        claim = await store.claim(conv.id, "o1", lease_secs=LEASE)
        assert claim is not None and claim.pending == (a, b)

    async def test_a_dead_owners_lease_is_taken_at_once(
        self, store: Store, conv: Conversation
    ) -> None:
        dead = dead_owner()
        running, _ = await take_turn(store, conv.id, owner=dead)
        waiting, _ = await store.add_message(conv.id, NewMessage("next"))
        claim = await store.claim(conv.id, "o2", lease_secs=LEASE)  # no time has passed
        assert claim is not None
        assert [e.type for e in claim.closed] == [TURN_COMPLETED]
        closed = claim.closed[0]
        assert closed.turn == running.running_turn
        assert closed.data["status"] == STATUS_ABANDONED
        assert closed.data["error"] == rules.ABANDONED_ERROR
        assert closed.data["hint"] == rules.ABANDONED_HINT
        assert (claim.conversation.running_turn, claim.conversation.last_status) == (
            0,
            STATUS_ABANDONED,
        )
        assert claim.pending == (waiting,), "messages waiting behind the dead turn stay"
        assert (await store.read(conv.id))[-1] == closed
        with pytest.raises(LeaseLost):
            await store.complete(
                conv.id, dead, running.running_turn, outcome(), captured_session="s", epoch=0
            )

    async def test_an_expired_lease_with_an_open_turn(
        self, store: Store, conv: Conversation, clock: FakeClock
    ) -> None:
        await take_turn(store, conv.id, owner="o1")
        clock.advance(LEASE + 1)
        claim = await store.claim(conv.id, "o2", lease_secs=LEASE)
        assert claim is not None and [e.data["status"] for e in claim.closed] == [STATUS_ABANDONED]
        completed = [e for e in await store.read(conv.id) if e.type == TURN_COMPLETED]
        assert len(completed) == 1

    async def test_recover(self, store: Store, conv: Conversation, clock: FakeClock) -> None:
        running, _ = await take_turn(store, conv.id, owner="o1")
        assert await store.recover(conv.id) == [], "a live lease is left alone"
        clock.advance(LEASE + 1)
        events = await store.recover(conv.id)
        assert [(e.type, e.turn, e.data["status"]) for e in events] == [
            (TURN_COMPLETED, running.running_turn, STATUS_ABANDONED)
        ]
        now = await store.get(conv.id)
        assert now is not None and (now.lease_owner, now.running_turn) == ("", 0)
        assert await store.recover(conv.id) == []
        # An expired lease with no open turn is dropped, writing no event.
        await store.claim(conv.id, "o3", lease_secs=LEASE)
        clock.advance(LEASE + 1)
        assert await store.recover(conv.id) == []
        now = await store.get(conv.id)
        assert now is not None and now.lease_owner == ""

    async def test_heartbeat_and_release(
        self, store: Store, conv: Conversation, clock: FakeClock
    ) -> None:
        assert await store.heartbeat(conv.id, "o1", lease_secs=LEASE) is False
        await store.claim(conv.id, "o1", lease_secs=LEASE)
        await store.release(conv.id, "o2")  # not the holder: nothing happens
        held = await store.get(conv.id)
        assert held is not None and held.lease_owner == "o1"
        await store.release(conv.id, "o1")
        free = await store.get(conv.id)
        assert free is not None and (free.lease_owner, free.lease_expires) == ("", 0.0)
        assert await store.heartbeat(conv.id, "o1", lease_secs=LEASE) is False
        assert await store.claim(conv.id, "o2", lease_secs=LEASE) is not None

    # --- turns --------------------------------------------------------------------------------

    async def test_take_numbers_turns_and_consumes(self, store: Store, conv: Conversation) -> None:
        a, _ = await store.add_message(conv.id, NewMessage("a", from_user="al"))
        b, _ = await store.add_message(conv.id, NewMessage("b", from_user="bo"))
        c, _ = await store.add_message(conv.id, NewMessage("c", from_user="al"))
        await store.claim(conv.id, "o1", lease_secs=LEASE)
        with pytest.raises(ValueError, match="oldest pending"):
            await store.take(conv.id, "o1", [b.id], text="b")
        with pytest.raises(ValueError, match="oldest pending"):
            await store.take(conv.id, "o1", [], text="")
        # collect: two messages in one turn, their senders merged
        taken, queued = await store.take(
            conv.id, "o1", [a.id, b.id], text="a\nb", attachments=[{"url": "u"}]
        )
        assert (taken.turn_count, taken.running_turn, taken.consumed) == (1, 1, b.id)
        assert (queued.type, queued.turn, queued.id) == (TURN_QUEUED, 1, 4)
        assert queued.data == {
            "messages": [a.id, b.id],
            "text": "a\nb",
            "attachments": [{"url": "u"}],
            "from_users": ["al", "bo"],
        }
        with pytest.raises(ValueError, match="still open"):
            await store.take(conv.id, "o1", [c.id], text="c")
        await store.complete(conv.id, "o1", 1, outcome(), captured_session=None, epoch=0)
        second, _ = await store.take(conv.id, "o1", [c.id], text="c")
        assert (second.turn_count, second.running_turn, second.consumed) == (2, 2, c.id)

    async def test_a_write_without_the_lease_raises_and_writes_nothing(
        self, store: Store, conv: Conversation, clock: FakeClock
    ) -> None:
        msg, _ = await store.add_message(conv.id, NewMessage("a"))
        with pytest.raises(LeaseLost):
            await store.take(conv.id, "o1", [msg.id], text="a")
        running, _ = await take_turn(store, conv.id, owner="o1")
        clock.advance(LEASE + 1)
        await store.claim(conv.id, "o2", lease_secs=LEASE)  # o1's turn abandoned
        version = await store.version()
        before = await store.read(conv.id)
        turn = running.running_turn
        for write in (
            store.take(conv.id, "o1", [msg.id], text="a"),
            store.start(conv.id, "o1", turn, ""),
            store.append(conv.id, "o1", turn, TURN_PARTIAL, {"text": "x", "offset": 0}),
            store.complete(conv.id, "o1", turn, outcome(), captured_session="s", epoch=0),
        ):
            with pytest.raises(LeaseLost, match="no longer held"):
                await write
        assert await store.read(conv.id) == before
        assert await store.version() == version

    async def test_start_append_complete(
        self, store: Store, conv: Conversation, clock: FakeClock
    ) -> None:
        await store.add_message(conv.id, NewMessage("hi"))
        await store.claim(conv.id, "o1", lease_secs=LEASE)
        await store.take(conv.id, "o1", [1], text="hi")
        clock.advance(1)
        started = await store.start(conv.id, "o1", 1, "")
        assert (started.type, started.turn, started.data, started.at) == (
            TURN_STARTED,
            1,
            {"session_id": ""},
            T0 + 1,
        )
        partial = await store.append(conv.id, "o1", 1, TURN_PARTIAL, {"text": "he", "offset": 0})
        asked = await store.append(
            conv.id,
            "o1",
            1,
            TURN_PERMISSION,
            {"tool": "sh", "input": {}, "description": "", "deadline": 0},
        )
        assert [partial.id, asked.id] == [started.id + 1, started.id + 2]
        with pytest.raises(ValueError, match="appends only"):
            await store.append(conv.id, "o1", 1, TURN_COMPLETED, outcome())
        with pytest.raises(ValueError, match="not the open turn"):
            await store.append(conv.id, "o1", 2, TURN_PARTIAL, {"text": "x", "offset": 2})
        with pytest.raises(ValueError, match="status"):
            await store.complete(conv.id, "o1", 1, outcome("fine"), captured_session=None, epoch=0)
        clock.advance(1)
        done, event = await store.complete(
            conv.id, "o1", 1, outcome(STATUS_ERROR, session_id="s1"), captured_session="s1", epoch=0
        )
        assert (event.type, event.turn, event.data["status"], event.data["session_id"]) == (
            TURN_COMPLETED,
            1,
            STATUS_ERROR,
            "s1",
        )
        assert done.session_id == "s1", "a failed turn's captured session is kept"
        assert (done.running_turn, done.last_status, done.updated_at) == (0, STATUS_ERROR, T0 + 2)
        assert done.lease_owner == "o1", "completing keeps the lease"
        with pytest.raises(ValueError, match="not the open turn"):
            await store.complete(conv.id, "o1", 1, outcome(), captured_session=None, epoch=0)
        types = [e.type for e in await store.read(conv.id)]
        assert types == [
            MESSAGE,
            TURN_QUEUED,
            TURN_STARTED,
            TURN_PARTIAL,
            TURN_PERMISSION,
            TURN_COMPLETED,
        ]
        # No session captured: the stored one stays.
        kept = await whole_turn(store, conv.id, session=None)
        assert kept.session_id == "s1"

    async def test_complete_can_give_the_lease_up_in_the_same_write(
        self, store: Store, conv: Conversation
    ) -> None:
        _, queued = await take_turn(store, conv.id, owner="o1")
        version = await store.version()
        done, _ = await store.complete(
            conv.id, "o1", queued.turn, outcome(), captured_session=None, epoch=0, release=True
        )
        assert (done.lease_owner, done.lease_expires, done.running_turn) == ("", 0.0, 0)
        assert await store.get(conv.id) == done
        assert await store.version() != version
        assert await store.claim(conv.id, "o2", lease_secs=LEASE) is not None, "free at once"

    async def test_a_reset_during_a_turn_wins_over_its_session(
        self, store: Store, conv: Conversation
    ) -> None:
        await whole_turn(store, conv.id, session="s1")
        running, _ = await take_turn(store, conv.id)
        reset = await store.reset(conv.id, by="al")
        assert (reset.type, reset.turn, reset.data) == (CONVERSATION_RESET, 0, {"by": "al"})
        now = await store.get(conv.id)
        assert now is not None and (now.session_id, now.reset_epoch) == (
            "",
            running.reset_epoch + 1,
        )
        done, _ = await store.complete(
            conv.id,
            "o1",
            running.running_turn,
            outcome(),
            captured_session="s2",
            epoch=running.reset_epoch,
        )
        assert done.session_id == "", "the turn started before the reset"
        later = await whole_turn(store, conv.id, session="s3")
        assert later.session_id == "s3"

    async def test_cancel_drops_or_keeps_the_waiting(
        self, store: Store, conv: Conversation
    ) -> None:
        idle = await store.cancel(conv.id, by="al", reason="stop")
        assert (idle.type, idle.turn, idle.data) == (
            CONVERSATION_CANCEL,
            0,
            {"by": "al", "dropped": [], "reason": "stop"},
        )
        running, _ = await take_turn(store, conv.id)
        a, _ = await store.add_message(conv.id, NewMessage("a"))
        kept = await store.cancel(conv.id, drop_pending=False)  # interrupt
        assert (kept.turn, kept.data["dropped"]) == (running.running_turn, [])
        claim = await store.claim(conv.id, "o1", lease_secs=LEASE)
        assert claim is not None and claim.pending == (a,)
        b, _ = await store.add_message(conv.id, NewMessage("b"))
        dropped = await store.cancel(conv.id)
        assert (dropped.turn, dropped.data["dropped"]) == (running.running_turn, [a.id, b.id])
        now = await store.get(conv.id)
        assert now is not None and now.consumed == b.id and now.running_turn == running.running_turn
        claim = await store.claim(conv.id, "o1", lease_secs=LEASE)
        assert claim is not None and claim.pending == ()
        done, _ = await store.complete(
            conv.id,
            "o1",
            running.running_turn,
            outcome("cancelled"),
            captured_session=None,
            epoch=0,
        )
        assert done.last_status == "cancelled"

    async def test_answer(self, store: Store, conv: Conversation) -> None:
        running, _ = await take_turn(store, conv.id)
        turn = running.running_turn
        ask = {"tool": "sh", "input": {"cmd": "ls"}, "description": "list", "deadline": T0 + 60}
        request = await store.append(conv.id, "o1", turn, TURN_PERMISSION, ask)
        with pytest.raises(NotFound):
            await store.answer(conv.id, 999, allow=True)
        with pytest.raises(NotFound):
            await store.answer(
                conv.id, running.last_event, allow=True
            )  # turn.queued, not a request
        with pytest.raises(ValueError, match="scope"):
            await store.answer(conv.id, request.id, allow=True, scope="forever")
        answer = await store.answer(
            conv.id, request.id, allow=True, scope="session", message="ok", by="al"
        )
        assert answer is not None
        assert (answer.type, answer.turn) == (TURN_PERMISSION_ANSWERED, turn)
        assert answer.data == {
            "request": request.id,
            "allow": True,
            "scope": "session",
            "message": "ok",
            "by": "al",
            "tool": "sh",
        }
        assert await store.answer(conv.id, request.id, allow=False) is None, "the first answer wins"
        changed = await store.append(conv.id, "o1", turn, TURN_PERMISSION, ask)
        with pytest.raises(ValueError, match="updated_input"):
            await store.answer(conv.id, changed.id, allow=False, updated_input={"cmd": "pwd"})
        edited = await store.answer(conv.id, changed.id, allow=True, updated_input={"cmd": "pwd"})
        assert edited is not None and edited.data["updated_input"] == {"cmd": "pwd"}
        late = await store.append(conv.id, "o1", turn, TURN_PERMISSION, ask)
        await store.complete(conv.id, "o1", turn, outcome(), captured_session=None, epoch=0)
        assert await store.answer(conv.id, late.id, allow=True) is None, "its turn has ended"
        answers = [e for e in await store.read(conv.id) if e.type == TURN_PERMISSION_ANSWERED]
        assert answers == [answer, edited]

    # --- deliveries, reading, retention -------------------------------------------------------

    async def test_ack_never_moves_back(self, store: Store, conv: Conversation) -> None:
        for n in range(7):
            await store.add_message(conv.id, NewMessage(f"m{n}"))
        assert await store.acked("tg", conv.id) == 0
        await store.ack("tg", conv.id, 5)
        await store.ack("tg", conv.id, 3)
        await store.ack("slack", conv.id, 1)
        assert (await store.acked("tg", conv.id), await store.acked("slack", conv.id)) == (5, 1)
        await store.ack("tg", conv.id, 7)
        assert await store.acked("tg", conv.id) == 7
        with pytest.raises(ValueError):
            await store.ack("tg", conv.id, -1)
        with pytest.raises(ValueError, match="not a position"):
            await store.ack("tg", conv.id, 8)
        assert await store.acked("tg", conv.id) == 7

    async def test_a_delivery_is_recorded_and_acknowledged_in_one_write(
        self, store: Store, conv: Conversation
    ) -> None:
        _, queued = await take_turn(store, conv.id)
        posted = await store.delivered(
            conv.id, "tg", DELIVERY_POSTED, ["m-1"], turn=queued.turn, data={"chars": 12}
        )
        assert (posted.type, posted.turn, posted.data) == (
            DELIVERY_POSTED,
            queued.turn,
            {"chars": 12, "channel": "tg", "ids": ["m-1"]},
        )
        assert await store.acked("tg", conv.id) == 0, "no position given: nothing acknowledged"
        edited = await store.delivered(
            conv.id, "tg", DELIVERY_EDITED, ["m-1"], turn=queued.turn, position=posted.id
        )
        assert edited.id == posted.id + 1
        assert await store.acked("tg", conv.id) == posted.id
        last = await store.read(conv.id, after=posted.id)
        assert [e.type for e in last] == [DELIVERY_EDITED]
        version = await store.version()
        for bad in (
            dict(type="delivery.lost", ids=["x"]),
            dict(type=DELIVERY_FINISHED, ids=["x"], turn=99),
            dict(type=DELIVERY_FINISHED, ids=["x"], position=10_000),
        ):
            with pytest.raises(ValueError):
                await store.delivered(conv.id, "tg", **bad)  # type: ignore[arg-type]
        assert await store.version() == version, "a refused delivery writes nothing"
        assert await store.read(conv.id, after=edited.id) == []
        with pytest.raises(NotFound):
            await store.delivered("nope", "tg", DELIVERY_POSTED, ["x"])

    async def test_read_after_and_limit(self, store: Store, conv: Conversation) -> None:
        for n in range(6):
            await store.add_message(conv.id, NewMessage(f"m{n}"))
        assert [e.id for e in await store.read(conv.id, after=2)] == [3, 4, 5, 6]
        assert [e.id for e in await store.read(conv.id, after=2, limit=2)] == [3, 4]
        assert await store.read(conv.id, after=6) == []
        assert await store.read(conv.id, limit=0) == []
        assert [e.id for e in await store.read(conv.id, after=-5, limit=1)] == [1]

    async def test_events_are_copies(self, store: Store, conv: Conversation) -> None:
        running, _ = await take_turn(store, conv.id)
        data: dict[str, Any] = {
            "tool": "sh",
            "input": {"argv": ["ls"]},
            "description": "",
            "deadline": 0,
        }
        event = await store.append(conv.id, "o1", running.running_turn, TURN_PERMISSION, data)
        data["input"]["argv"].append("-l")
        read = (await store.read(conv.id, after=event.id - 1))[0]
        assert read.data["input"] == {"argv": ["ls"]}
        read.data["input"]["argv"].append("-a")
        again = (await store.read(conv.id, after=event.id - 1))[0]
        assert again.data["input"] == {"argv": ["ls"]}

    async def test_data_that_is_not_json_is_refused(self, store: Store, conv: Conversation) -> None:
        running, _ = await take_turn(store, conv.id)
        before, version = await store.get(conv.id), await store.version()
        turn = running.running_turn
        for bad in ({"text": {1, 2}, "offset": 0}, {"text": "", "offset": float("nan")}):
            with pytest.raises((TypeError, ValueError)):
                await store.append(conv.id, "o1", turn, TURN_PARTIAL, bad)
        assert await store.get(conv.id) == before
        assert await store.version() == version

    async def test_transcript_is_read_from_the_log(
        self, store: Store, conv: Conversation, clock: FakeClock
    ) -> None:
        await store.add_message(
            conv.id, NewMessage("hello", attachments=({"url": "u"},), from_user="al")
        )
        await store.claim(conv.id, "o1", lease_secs=LEASE)
        await store.take(conv.id, "o1", [1], text="hello", attachments=[{"url": "u"}])
        clock.advance(2)
        await store.start(conv.id, "o1", 1, "")
        await store.complete(
            conv.id,
            "o1",
            1,
            outcome(reply="hi!", session_id="s1", duration_ms=40),
            captured_session="s1",
            epoch=0,
        )
        await whole_turn(
            store, conv.id, status=STATUS_ERROR, exit_code=3, error="bad", hint="try again"
        )
        await take_turn(store, conv.id)  # running: not in the transcript
        turns = await store.transcript(conv.id)
        assert [(t.turn, t.status) for t in turns] == [(1, STATUS_OK), (2, STATUS_ERROR)]
        first = turns[0]
        assert (first.message, first.attachments, first.from_users) == (
            "hello",
            ({"url": "u"},),
            ("al",),
        )
        assert (first.reply, first.error, first.session_id, first.exit_code) == (
            "hi!",
            None,
            "s1",
            0,
        )
        assert (first.started_at, first.duration_ms) == (T0 + 2, 40)
        assert (turns[1].error, turns[1].exit_code, turns[1].hint) == ("bad", 3, "try again")
        assert first.hint == ""
        assert [t.turn for t in await store.transcript(conv.id, limit=1)] == [2]
        assert await store.transcript(conv.id, limit=0) == []
        assert turns == transcript_of(await store.read(conv.id))

    async def test_retention_keeps_the_last_turns(
        self, make_store: StoreFactory, clock: FakeClock
    ) -> None:
        async with make_store(clock=clock, keep_turns=2) as store:
            conv = await store.open(KEY)
            for n in range(5):
                done = await whole_turn(store, conv.id, session=f"s{n}")
            assert [t.turn for t in await store.transcript(conv.id)] == [4, 5]
            events = await store.read(conv.id)
            assert events[0].id == done.first_event > 1
            assert [e.id for e in events] == list(range(done.first_event, done.last_event + 1))
            assert (done.turn_count, done.session_id) == (5, "s4"), "count and session survive"
            assert await store.get(conv.id) == done

    async def test_retention_keeps_waiting_messages(
        self, make_store: StoreFactory, clock: FakeClock
    ) -> None:
        async with make_store(clock=clock, keep_turns=1) as store:
            conv = await store.open(KEY)
            await whole_turn(store, conv.id)
            running, _ = await take_turn(store, conv.id)
            waiting, _ = await store.add_message(conv.id, NewMessage("later"))
            interrupted, _ = await store.add_message(conv.id, NewMessage("kept"))
            await store.cancel(conv.id, drop_pending=False)
            done, _ = await store.complete(
                conv.id, "o1", running.running_turn, outcome(), captured_session=None, epoch=0
            )
            assert done.first_event > 1
            ids = [e.id for e in await store.read(conv.id)]
            assert waiting.id in ids and interrupted.id in ids
            claim = await store.claim(conv.id, "o1", lease_secs=LEASE)
            assert claim is not None and claim.pending == (waiting, interrupted)
            assert [t.turn for t in await store.transcript(conv.id)] == [2]

    async def test_retention_waits_for_deliveries(
        self, make_store: StoreFactory, clock: FakeClock
    ) -> None:
        async with make_store(clock=clock, keep_turns=1) as store:
            conv = await store.open(KEY)
            await store.add_message(conv.id, NewMessage("x"))
            await store.ack("tg", conv.id, 1)
            for _ in range(4):
                done = await whole_turn(store, conv.id)
                await store.ack("http", conv.id, done.last_event)
            assert done.first_event == 2, "tg has delivered only up to event 1"
            assert (await store.read(conv.id))[0].id == 2
            await store.ack("tg", conv.id, done.last_event)
            done = await whole_turn(store, conv.id)
            assert [t.turn for t in await store.transcript(conv.id)] == [done.turn_count]

    # --- state, deleting, pruning, versions ----------------------------------------------

    async def test_state(self, store: Store, conv: Conversation) -> None:
        class Prefs(BaseModel):
            mode: str
            n: int = 0

        assert await store.get_state(conv.id) is None
        await store.set_state(conv.id, {"mode": "terse", "tags": ("a",)})
        state = await store.get_state(conv.id)
        assert state == {"mode": "terse", "tags": ["a"]}
        state["mode"] = "changed"
        assert (await store.get_state(conv.id))["mode"] == "terse"
        await store.set_state(conv.id, {"mode": "long"}, model=Prefs)
        assert await store.get_state(conv.id) == {"mode": "long", "n": 0}
        version = await store.version()
        for bad, model in (({"n": "x"}, Prefs), ({1, 2}, None), (float("nan"), None)):
            with pytest.raises(StateError, match="nothing was written"):
                await store.set_state(conv.id, bad, model=model)
        assert await store.get_state(conv.id) == {"mode": "long", "n": 0}
        assert await store.version() == version

    async def test_a_handled_message_is_kept_but_never_waits(
        self, store: Store, conv: Conversation
    ) -> None:
        refused: list[Load] = []

        def refuse(c: Conversation, load: Load) -> None:
            refused.append(load)
            raise AssertionError("admission is for messages that wait")

        event, again = await store.add_message(
            conv.id,
            NewMessage("/deploy", from_user="al", platform_id="u1", handled=True),
            admit=refuse,
        )
        assert (event.type, event.data["text"], again) == ("message.handled", "/deploy", False)
        assert refused == []
        same, again = await store.add_message(
            conv.id, NewMessage("/deploy", from_user="al", platform_id="u1", handled=True)
        )
        assert (same.id, again) == (event.id, True), "a redelivery is recognised"
        assert await store.unfinished() == [], "nothing waits for the agent"
        claim = await store.claim(conv.id, "o1", lease_secs=10)
        assert claim is not None and claim.pending == ()
        seen: list[Load] = []
        await store.add_message(
            conv.id, NewMessage("hi", from_user="al"), admit=lambda c, load: seen.append(load)
        )
        assert (seen[0].pending, seen[0].user_active) == (0, 0)

    async def test_subscriptions(self, store: Store, conv: Conversation) -> None:
        other = await store.open(ConversationKey("http", "x", ECHO))
        assert not await store.subscribed(conv.id)
        await store.set_subscribed(conv.id, True)
        await store.set_subscribed(conv.id, True)
        assert await store.subscribed(conv.id) and not await store.subscribed(other.id)
        await store.set_subscribed(conv.id, False)
        assert not await store.subscribed(conv.id)
        with pytest.raises(NotFound):
            await store.set_subscribed("nope", True)
        await store.set_subscribed(conv.id, True)
        await store.delete(conv.id)
        fresh = await store.open(KEY)
        assert not await store.subscribed(fresh.id) and not await store.subscribed(conv.id)

    async def test_delete_takes_everything(self, store: Store, conv: Conversation) -> None:
        other = await store.open(ConversationKey("http", "x", ECHO))
        await whole_turn(store, conv.id)
        await store.set_state(conv.id, {"a": 1})
        await store.ack("tg", conv.id, 3)
        await store.add_message(conv.id, NewMessage("waiting", from_user="al", platform_id="p"))
        assert await store.delete(conv.id) is True
        assert await store.delete(conv.id) is False
        assert await store.get(conv.id) is None and await store.lookup(KEY) is None
        assert await store.read(conv.id) == [] and await store.transcript(conv.id) == []
        assert await store.get_state(conv.id) is None and await store.acked("tg", conv.id) == 0
        assert [c.id for c in await store.conversations()] == [other.id]
        seen: list[Load] = []
        await store.add_message(
            other.id, NewMessage("hi", from_user="al"), admit=lambda c, load: seen.append(load)
        )
        assert seen[0].user_active == 0 and seen[0].total_active == 0, (
            "its waiting messages went too"
        )
        fresh = await store.open(KEY)
        assert fresh.id != conv.id and fresh.turn_count == 0
        assert (await store.add_message(fresh.id, NewMessage("again", platform_id="p")))[1] is False

    async def test_prune_keeps_busy_and_recent(self, store: Store, clock: FakeClock) -> None:
        await store.open(KEY)  # idle since T0: pruned
        running = await store.open(ConversationKey("http", "running", ECHO))
        leased = await store.open(ConversationKey("http", "leased", ECHO))
        expired = await store.open(ConversationKey("http", "expired", ECHO))
        await take_turn(store, running.id, owner="o1")
        await store.claim(leased.id, "o2", lease_secs=1000)
        await store.claim(expired.id, "o3", lease_secs=1)
        waiting = await store.open(ConversationKey("http", "waiting", ECHO))
        await store.add_message(waiting.id, NewMessage("still to run"))
        clock.advance(100)
        recent = await store.open(ConversationKey("http", "recent", ECHO))
        assert await store.prune(T0 + 50) == 2
        left = {c.id for c in await store.conversations()}
        assert left == {running.id, leased.id, waiting.id, recent.id}, "what waits is kept"
        assert await store.prune(T0 + 50) == 0

    async def test_unfinished_lists_what_a_starting_bridge_must_serve(
        self, store: Store, clock: FakeClock
    ) -> None:
        done = await store.open(KEY)
        await whole_turn(store, done.id)
        clock.advance(1)
        waiting = await store.open(ConversationKey("http", "waiting", ECHO))
        await store.add_message(waiting.id, NewMessage("still to run"))
        clock.advance(1)
        running = await store.open(ConversationKey("http", "running", ECHO))
        await take_turn(store, running.id, owner="o1")
        clock.advance(1)
        dropped = await store.open(ConversationKey("http", "dropped", ECHO))
        await store.add_message(dropped.id, NewMessage("never mind"))
        await store.cancel(dropped.id, drop_pending=True)
        await store.open(ConversationKey("http", "empty", ECHO))
        assert [c.id for c in await store.unfinished()] == [waiting.id, running.id]

    # --- pairing ----------------------------------------------------------------------------

    async def test_a_pairing_code_is_approved_once_and_pairs_the_person(
        self, store: Store, clock: FakeClock
    ) -> None:
        p = await store.request_pairing("telegram", "42", "Ann (@ann)")
        assert p is not None and p.status == "pending" and len(p.code) == CODE_LENGTH
        assert set(p.code) <= set(ALPHABET)
        assert p.expires_at == T0 + CODE_VALID_SECS
        again = await store.request_pairing("telegram", "42", "Ann (@ann)")
        assert again == p, "asking again gives the same code"
        assert not await store.paired("telegram", "42")
        typed = f"{p.code[:4].lower()}-{p.code[4:]}"
        approved = await store.decide_pairing(typed, approve=True, by="root")
        assert approved is not None and (approved.status, approved.decided_by) == (
            "approved",
            "root",
        )
        assert await store.decide_pairing(p.code, approve=False, by="root") is None, "final"
        assert await store.paired("telegram", "42")
        assert not await store.paired("slack", "42"), "one channel"
        assert (await store.request_pairing("telegram", "42", "Ann")) == approved
        assert [x.code for x in await store.pairings("telegram")] == [p.code]
        assert await store.unpair("telegram", "42") is True
        assert not await store.paired("telegram", "42")
        assert await store.unpair("telegram", "42") is False

    async def test_pairing_codes_expire_are_denied_and_are_capped(
        self, store: Store, clock: FakeClock
    ) -> None:
        late = await store.request_pairing("telegram", "1", "one")
        assert late is not None
        clock.advance(CODE_VALID_SECS)
        assert await store.decide_pairing(late.code, approve=True, by="root") is None
        assert await store.pairings() == [], "an expired code is not listed"
        fresh = await store.request_pairing("telegram", "1", "one")
        assert fresh is not None and fresh.code != late.code
        denied = await store.decide_pairing(fresh.code, approve=False, by="root")
        assert denied is not None and denied.status == "denied"
        assert not await store.paired("telegram", "1")
        assert await store.decide_pairing("NOPE2345", approve=True, by="root") is None
        codes = [await store.request_pairing("telegram", f"u{i}", "x") for i in range(MAX_PENDING)]
        assert all(c is not None for c in codes)
        assert len({c.code for c in codes if c}) == MAX_PENDING
        assert await store.request_pairing("telegram", "one-too-many", "x") is None
        assert await store.request_pairing("slack", "u1", "x") is not None, "per channel"
        clock.advance(CODE_VALID_SECS)
        assert await store.request_pairing("telegram", "one-too-many", "x") is not None

    async def test_heads_are_the_last_ids_in_one_read(
        self, store: Store, conv: Conversation
    ) -> None:
        other = await store.open(ConversationKey("http", "bob", ECHO))
        await store.add_message(conv.id, NewMessage("a"))
        await store.add_message(conv.id, NewMessage("b"))
        assert await store.heads([conv.id, other.id, "c-missing"]) == {conv.id: 2, other.id: 0}
        assert await store.heads([]) == {}

    async def test_version_moves_with_every_write(self, store: Store, clock: FakeClock) -> None:
        seen = [await store.version()]

        async def changed() -> None:
            now = await store.version()
            assert now != seen[-1]
            seen.append(now)

        conv = await store.open(KEY)
        await changed()
        await store.get(conv.id)
        await store.read(conv.id)
        await store.conversations()
        assert await store.version() == seen[-1], "reads change nothing"
        await store.add_message(conv.id, NewMessage("a"))
        await changed()
        await store.claim(conv.id, "o1", lease_secs=LEASE)
        await changed()
        await store.take(conv.id, "o1", [1], text="a")
        await changed()
        await store.start(conv.id, "o1", 1, "")
        await changed()
        await store.append(conv.id, "o1", 1, TURN_PARTIAL, {"text": "x", "offset": 0})
        await changed()
        await store.complete(conv.id, "o1", 1, outcome(), captured_session=None, epoch=0)
        await changed()
        await store.heartbeat(conv.id, "o1", lease_secs=LEASE)
        await changed()
        await store.release(conv.id, "o1")
        await changed()
        await store.cancel(conv.id)
        await changed()
        await store.reset(conv.id)
        await changed()
        await store.ack("tg", conv.id, 1)
        await changed()
        await store.set_state(conv.id, 1)
        await changed()
        await store.delete(conv.id)
        await changed()
