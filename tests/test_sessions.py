"""Session stores: one contract, run against every store, then SQLite's own promises.

The contract half runs each test on a :class:`MemoryStore` and on a
:class:`SQLiteStore` in a temporary file, with a fake clock, so the two cannot
drift apart. The SQLite half opens real files: reopening, migrations, files
that are not ours, two writers at once, and a writer killed with SIGKILL.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import platformdirs
import pytest
from pydantic import BaseModel

from bridge.store import sqlite as store_sqlite
from bridge.store.errors import StateError, StoreError
from bridge.store.sessions import (
    DEFAULT_TRANSCRIPT_LIMIT,
    STATUS_CANCELLED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_TIMEOUT,
    Conversation,
    ConversationKey,
    MemoryStore,
    SessionStore,
    TranscriptEntry,
    session_after_turn,
    session_to_resume,
    status_of,
)
from bridge.store.sqlite import (
    MIGRATIONS,
    Migration,
    SQLiteStore,
    default_data_dir,
    open_store,
)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
T0 = 1_000_000.0
K = ConversationKey("terminal", "alice", "echo")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


StoreFactory = Callable[..., SessionStore]


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> StoreFactory:
    """A factory for the store under test, on the fake clock."""

    def make(**kw: Any) -> SessionStore:
        kw.setdefault("clock", clock)
        if request.param == "memory":
            return MemoryStore(**kw)
        return SQLiteStore(tmp_path / "sessions.db", **kw)

    return make


@pytest.fixture
async def store(make_store: StoreFactory, anyio_backend: str) -> AsyncIterator[SessionStore]:
    async with make_store() as s:
        yield s


def entry(turn: int = 1, message: str = "hi", **kw: Any) -> TranscriptEntry:
    return TranscriptEntry(turn=turn, message=message, **kw)


async def turn(
    store: SessionStore,
    key: ConversationKey = K,
    *,
    captured: str | None = None,
    status: str = STATUS_OK,
    message: str = "hi",
    **kw: Any,
) -> Conversation:
    """One turn the way the dispatcher records it: numbered after the stored count."""
    conv = await store.get(key)
    n = (conv.turn_count if conv else 0) + 1
    return await store.record_turn(
        key, entry(n, message, **kw), captured_session=captured, status=status
    )


# --- the session rules as pure functions ------------------------------------------------


@pytest.mark.parametrize(
    ("exit_code", "timed_out", "cancelled", "status"),
    [
        (0, False, False, STATUS_OK),
        (1, False, False, STATUS_ERROR),
        (137, False, False, STATUS_ERROR),
        (124, True, False, STATUS_TIMEOUT),
        (130, False, True, STATUS_CANCELLED),
        (124, True, True, STATUS_TIMEOUT),
    ],
)
def test_status_of(exit_code: int, timed_out: bool, cancelled: bool, status: str) -> None:
    assert status_of(exit_code, timed_out, cancelled) == status


@pytest.mark.parametrize(
    ("previous", "captured", "kept"),
    [("", None, ""), ("", "s1", "s1"), ("s1", None, "s1"), ("s1", "", "s1"), ("s1", "s2", "s2")],
)
def test_session_after_turn(previous: str, captured: str | None, kept: str) -> None:
    assert session_after_turn(previous, captured) == kept


def test_session_to_resume_without_a_conversation() -> None:
    assert session_to_resume(None, T0, None) == ""
    assert session_to_resume(Conversation(K, updated_at=T0), T0, None) == ""


# --- the contract: every store ------------------------------------------------------------


@pytest.mark.anyio
async def test_an_unknown_conversation_is_empty(store: SessionStore) -> None:
    assert await store.get(K) is None
    assert await store.transcript(K) == []
    assert await store.get_state(K) is None
    assert await store.delete(K) is False
    await store.reset(K)
    assert await store.get(K) is None, "reset must not create a conversation"
    assert await store.conversations() == []


@pytest.mark.anyio
async def test_first_turn_creates_the_conversation(store: SessionStore) -> None:
    conv = await store.record_turn(
        K, entry(), captured_session="s1", status=STATUS_OK, session_name="work"
    )
    assert conv == Conversation(
        K,
        session_id="s1",
        session_name="work",
        turn_count=1,
        created_at=T0,
        updated_at=T0,
        last_status=STATUS_OK,
    )
    assert await store.get(K) == conv


@pytest.mark.anyio
async def test_later_turns_count_and_move_updated_at(store: SessionStore, clock: FakeClock) -> None:
    await turn(store, captured="s1")
    clock.advance(5)
    conv = await turn(store, status=STATUS_ERROR)
    assert (conv.turn_count, conv.created_at, conv.updated_at) == (2, T0, T0 + 5)
    assert conv.last_status == STATUS_ERROR
    assert await store.get(K) == conv


@pytest.mark.anyio
@pytest.mark.parametrize("status", [STATUS_OK, STATUS_ERROR, STATUS_TIMEOUT, STATUS_CANCELLED])
async def test_a_captured_id_is_stored_whatever_the_outcome(
    store: SessionStore, status: str
) -> None:
    await turn(store, captured="s1")
    conv = await turn(store, captured="s2", status=status)
    assert conv.session_id == "s2"
    assert conv.last_status == status
    assert (await store.get(K)) == conv


@pytest.mark.anyio
@pytest.mark.parametrize("status", [STATUS_OK, STATUS_ERROR, STATUS_TIMEOUT, STATUS_CANCELLED])
@pytest.mark.parametrize("captured", [None, ""])
async def test_a_turn_without_an_id_keeps_the_previous_one(
    store: SessionStore, status: str, captured: str | None
) -> None:
    await turn(store, captured="s1")
    conv = await turn(store, captured=captured, status=status)
    assert conv.session_id == "s1"
    assert conv.turn_count == 2


@pytest.mark.anyio
async def test_reset_forgets_the_id_and_keeps_transcript_and_state(
    store: SessionStore, clock: FakeClock
) -> None:
    await turn(store, captured="s1", message="one")
    await store.set_state(K, {"mood": "good"})
    clock.advance(3)
    await store.reset(K)
    conv = await store.get(K)
    assert conv is not None
    assert (conv.session_id, conv.turn_count, conv.updated_at) == ("", 1, T0 + 3)
    assert [e.message for e in await store.transcript(K)] == ["one"]
    assert await store.get_state(K) == {"mood": "good"}
    assert session_to_resume(conv, clock(), None) == ""
    # The next turn starts a fresh session and may capture a new id.
    conv = await turn(store, captured="s2")
    assert (conv.session_id, conv.turn_count) == ("s2", 2)


@pytest.mark.anyio
async def test_an_idle_conversation_starts_fresh(store: SessionStore, clock: FakeClock) -> None:
    await turn(store, captured="s1")
    clock.advance(60)
    assert session_to_resume(await store.get(K), clock(), 60) == "s1"
    clock.advance(0.5)
    assert session_to_resume(await store.get(K), clock(), 60) == ""
    assert session_to_resume(await store.get(K), clock(), None) == "s1", "no limit: never idle"
    # The fresh turn captures a new id; the clock starts again from it.
    await turn(store, captured="s2")
    clock.advance(30)
    assert session_to_resume(await store.get(K), clock(), 60) == "s2"


@pytest.mark.anyio
async def test_a_failed_turn_still_counts_as_activity(
    store: SessionStore, clock: FakeClock
) -> None:
    await turn(store, captured="s1")
    clock.advance(50)
    await turn(store, status=STATUS_TIMEOUT)
    clock.advance(50)
    assert session_to_resume(await store.get(K), clock(), 60) == "s1"


@pytest.mark.anyio
async def test_transcript_round_trips_every_field(store: SessionStore) -> None:
    full = TranscriptEntry(
        turn=1,
        message="line one\nline two — ünïcödé 🎉",
        reply="",
        error="timed out after 3 s",
        session_id="s-1",
        exit_code=124,
        attachments=[
            {"type": "image", "url": "https://x.test/a.png", "mime_type": "image/png"},
            {"type": "file", "url": "file:///tmp/b.txt", "name": "b.txt"},
        ],
        from_user="@alice",
        started_at=T0 - 3.25,
        duration_ms=3004,
    )
    plain = entry(2, "again", reply="ok\n\nblank lines kept")
    await store.record_turn(K, full, captured_session="s-1", status=STATUS_TIMEOUT)
    await store.record_turn(K, plain, captured_session=None, status=STATUS_OK)
    assert await store.transcript(K) == [full, plain]


@pytest.mark.anyio
async def test_transcript_limit_argument(store: SessionStore) -> None:
    for _ in range(4):
        await turn(store)
    assert [e.turn for e in await store.transcript(K)] == [1, 2, 3, 4]
    assert [e.turn for e in await store.transcript(K, limit=2)] == [3, 4]
    assert [e.turn for e in await store.transcript(K, limit=10)] == [1, 2, 3, 4]
    assert await store.transcript(K, limit=0) == []


@pytest.mark.anyio
async def test_the_transcript_keeps_the_newest_turns(make_store: StoreFactory) -> None:
    async with make_store(transcript_limit=3) as store:
        for i in range(7):
            await turn(store, message=f"m{i}")
        conv = await store.get(K)
        assert conv is not None and conv.turn_count == 7
        assert [e.message for e in await store.transcript(K)] == ["m4", "m5", "m6"]


@pytest.mark.anyio
async def test_a_zero_limit_keeps_no_transcript(make_store: StoreFactory) -> None:
    async with make_store(transcript_limit=0) as store:
        conv = await turn(store, captured="s1")
        assert (conv.turn_count, conv.session_id) == (1, "s1")
        assert await store.transcript(K) == []


@pytest.mark.parametrize("limit", [-1, 1.5, True])
def test_a_bad_transcript_limit_is_refused(make_store: StoreFactory, limit: Any) -> None:
    with pytest.raises(ValueError, match="transcript_limit"):
        make_store(transcript_limit=limit)


def test_the_default_limit(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.transcript_limit == DEFAULT_TRANSCRIPT_LIMIT  # type: ignore[attr-defined]
    anyio.run(store.close)


@pytest.mark.anyio
async def test_stored_entries_do_not_follow_the_callers_objects(store: SessionStore) -> None:
    attachments = [{"type": "file", "url": "https://x.test/f"}]
    await store.record_turn(
        K, entry(attachments=attachments), captured_session=None, status=STATUS_OK
    )
    attachments[0]["url"] = "changed"
    attachments.append({"type": "image", "url": "https://x.test/i"})
    (stored,) = await store.transcript(K)
    assert stored.attachments == [{"type": "file", "url": "https://x.test/f"}]


@pytest.mark.anyio
async def test_conversations_are_kept_apart_by_channel_key_and_profile(
    store: SessionStore,
) -> None:
    keys = [
        K,
        ConversationKey("http", K.key, K.profile),
        ConversationKey(K.channel, "bob", K.profile),
        ConversationKey(K.channel, K.key, "other"),
    ]
    for i, key in enumerate(keys):
        await turn(store, key, captured=f"s{i}")
    for i, key in enumerate(keys):
        conv = await store.get(key)
        assert conv is not None and (conv.session_id, conv.turn_count) == (f"s{i}", 1)


@pytest.mark.anyio
async def test_conversations_filters_and_order(store: SessionStore, clock: FakeClock) -> None:
    tg = ConversationKey("telegram", "42", "echo")
    tg2 = ConversationKey("telegram", "43", "claude")
    web = ConversationKey("http", "abc", "claude")
    web2 = ConversationKey("http", "abb", "claude")
    for key in (tg, web, tg2):
        await turn(store, key)
        clock.advance(1)
    await turn(store, web2)  # same time as the next one: ties go in key order
    await turn(store, web)

    def keys(convs: list[Conversation]) -> list[ConversationKey]:
        return [c.key for c in convs]

    assert keys(await store.conversations()) == [web2, web, tg2, tg]
    assert keys(await store.conversations(channel="telegram")) == [tg2, tg]
    assert keys(await store.conversations(profile="claude")) == [web2, web, tg2]
    assert keys(await store.conversations(channel="http", profile="claude")) == [web2, web]
    assert await store.conversations(channel="slack") == []
    assert await store.conversations() == [await store.get(k) for k in (web2, web, tg2, tg)]


@pytest.mark.anyio
async def test_delete_removes_conversation_state_and_transcript(store: SessionStore) -> None:
    other = ConversationKey("terminal", "bob", "echo")
    await turn(store, captured="s1", message="old")
    await store.set_state(K, {"x": 1})
    await turn(store, other, captured="b1")
    assert await store.delete(K) is True
    assert await store.delete(K) is False
    assert await store.get(K) is None
    assert await store.transcript(K) == []
    assert await store.get_state(K) is None
    assert [c.key for c in await store.conversations()] == [other]
    # The same key later starts from nothing.
    conv = await turn(store, message="new")
    assert (conv.turn_count, conv.session_id) == (1, "")
    assert [e.message for e in await store.transcript(K)] == ["new"]
    assert await store.get_state(K) is None


@pytest.mark.anyio
async def test_prune_removes_conversations_idle_since_before_a_time(
    store: SessionStore, clock: FakeClock
) -> None:
    keys = [ConversationKey("batch", str(i), "echo") for i in range(3)]
    for key in keys:  # updated at T0, T0 + 100, T0 + 200
        await turn(store, key)
        await store.set_state(key, {"k": key.key})
        clock.advance(100)
    assert await store.prune(T0 + 100) == 1, "strictly older than the cut-off"
    assert await store.get(keys[0]) is None
    assert await store.transcript(keys[0]) == []
    assert await store.get_state(keys[0]) is None
    assert [c.key for c in await store.conversations()] == [keys[2], keys[1]]
    assert await store.prune(T0 + 100) == 0
    assert await store.prune(clock() + 1) == 2
    assert await store.conversations() == []


@pytest.mark.anyio
async def test_state_round_trips_json(store: SessionStore) -> None:
    value = {"list": [1, 2.5, "three", None, True], "nested": {"é": "ü"}, "empty": {}}
    await store.set_state(K, value)
    assert await store.get_state(K) == value
    await store.set_state(K, [1, 2])
    assert await store.get_state(K) == [1, 2]
    await store.set_state(K, "just a string")
    assert await store.get_state(K) == "just a string"
    await store.set_state(K, None)
    assert await store.get_state(K) is None


@pytest.mark.anyio
async def test_state_comes_back_as_json_would_give_it(store: SessionStore) -> None:
    await store.set_state(K, {"pair": (1, 2), 3: "three"})
    assert await store.get_state(K) == {"pair": [1, 2], "3": "three"}


@pytest.mark.anyio
async def test_state_is_a_copy(store: SessionStore) -> None:
    value = {"items": [1]}
    await store.set_state(K, value)
    value["items"].append(2)
    got = await store.get_state(K)
    got["items"].append(3)
    assert await store.get_state(K) == {"items": [1]}


@pytest.mark.anyio
async def test_state_on_a_new_conversation_creates_it(
    store: SessionStore, clock: FakeClock
) -> None:
    await store.set_state(K, {"a": 1})
    assert await store.get(K) == Conversation(K, created_at=T0, updated_at=T0)
    clock.advance(10)
    conv = await turn(store, captured="s1")
    assert (conv.turn_count, conv.created_at, conv.updated_at) == (1, T0, T0 + 10)
    assert await store.get_state(K) == {"a": 1}, "a turn keeps the state"


@pytest.mark.anyio
async def test_setting_state_is_not_activity(store: SessionStore, clock: FakeClock) -> None:
    await turn(store, captured="s1")
    clock.advance(100)
    await store.set_state(K, {"a": 1})
    conv = await store.get(K)
    assert conv is not None and conv.updated_at == T0


class Prefs(BaseModel):
    lang: str = "en"
    verbose: bool = False


@pytest.mark.anyio
async def test_state_with_a_model_is_validated_and_filled(store: SessionStore) -> None:
    await store.set_state(K, {"lang": "fr"}, Prefs)
    assert await store.get_state(K) == {"lang": "fr", "verbose": False}
    await store.set_state(K, Prefs(lang="de", verbose=True), Prefs)
    assert await store.get_state(K) == {"lang": "de", "verbose": True}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "model", "match"),
    [
        ({"verbose": "not a bool"}, Prefs, "invalid state for Prefs: verbose"),
        ("just text", Prefs, "invalid state for Prefs"),
        (object(), None, "must be JSON data"),
        ({"tags": {"a", "b"}}, None, "must be JSON data"),
        ({"x": float("nan")}, None, "must be JSON data"),
        ([float("inf")], None, "must be JSON data"),
        (Prefs(), None, "must be JSON data"),
    ],
)
async def test_refused_state_leaves_the_stored_value_alone(
    store: SessionStore, value: Any, model: type[BaseModel] | None, match: str
) -> None:
    await store.set_state(K, {"lang": "en", "verbose": False})
    with pytest.raises(StateError, match=match) as info:
        await store.set_state(K, value, model)
    assert info.value.hint == "nothing was written"
    assert info.value.exit_code == 2
    assert await store.get_state(K) == {"lang": "en", "verbose": False}


@pytest.mark.anyio
async def test_refused_state_does_not_create_a_conversation(store: SessionStore) -> None:
    with pytest.raises(StateError):
        await store.set_state(K, object())
    assert await store.get(K) is None


@pytest.mark.anyio
async def test_many_conversations_many_turns(make_store: StoreFactory) -> None:
    convs, turns, limit = 80, 25, 10
    keys = [ConversationKey("load", f"c{i}", f"p{i % 3}") for i in range(convs)]
    async with make_store(transcript_limit=limit) as store:
        for t in range(1, turns + 1):
            for i, key in enumerate(keys):
                captured = f"s{i}-{t}" if (t + i) % 4 == 0 else None
                await turn(store, key, captured=captured, message=f"{key.key} turn {t}")
        listed = await store.conversations()
        assert len(listed) == convs
        assert len(await store.conversations(profile="p0")) == len(keys[::3])
        for i, key in enumerate(keys):
            conv = await store.get(key)
            assert conv is not None and conv.turn_count == turns
            last_capture = max(t for t in range(1, turns + 1) if (t + i) % 4 == 0)
            assert conv.session_id == f"s{i}-{last_capture}"
            kept = await store.transcript(key)
            assert [e.turn for e in kept] == list(range(turns - limit + 1, turns + 1))
            assert kept[-1].message == f"{key.key} turn {turns}"


@pytest.mark.anyio
async def test_concurrent_turns_from_many_tasks_all_count(make_store: StoreFactory) -> None:
    keys = [ConversationKey("tasks", f"c{i}", "echo") for i in range(4)]
    async with make_store(transcript_limit=8) as store:

        async def writer(n: int) -> None:
            for i in range(10):
                await store.record_turn(
                    keys[(n + i) % 4], entry(i), captured_session=f"w{n}", status=STATUS_OK
                )

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(writer, n)
        counts = [c.turn_count for c in await store.conversations()]
        assert sum(counts) == 200
        for key in keys:
            assert len(await store.transcript(key)) == 8


# --- SQLite only --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_everything_survives_close_and_reopen(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "sessions.db"
    async with SQLiteStore(path, clock=clock) as store:
        await turn(store, captured="s1", message="hello", attachments=[{"type": "image"}])
        await store.set_state(K, {"n": 1})
        await turn(store, ConversationKey("http", "x", "echo"), captured="s9")
        before = await store.conversations()
        transcript = await store.transcript(K)
    async with SQLiteStore(path, clock=clock) as store:
        assert await store.conversations() == before
        assert await store.transcript(K) == transcript
        assert await store.get_state(K) == {"n": 1}
        conv = await turn(store)
        assert (conv.turn_count, conv.session_id) == (2, "s1")


@pytest.mark.anyio
async def test_the_file_is_set_up_for_sharing(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SQLiteStore(path) as store:
        await turn(store)
        conn = store._conn
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        busy_ms = int(store_sqlite.BUSY_TIMEOUT_SECS * 1000)
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (busy_ms,)
    with closing(sqlite3.connect(path)) as db:  # WAL is a property of the file
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.anyio
async def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="is closed"):
        await store.get(K)
    assert "closed" in repr(store)


@pytest.mark.anyio
async def test_text_that_is_not_unicode_is_stored_replaced(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "s.db") as store:
        await turn(store, message="lone \ud800 surrogate", reply="pair \ud83d\ude00")
        (stored,) = await store.transcript(K)
        assert (stored.message, stored.reply) == ("lone \ufffd surrogate", "pair 😀")
        with pytest.raises(StoreError, match="not valid Unicode"):
            await store.get(ConversationKey("http", "\udcff", "echo"))


def test_open_store_uses_the_folder_given(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "agentproc"
    store = open_store(folder)
    try:
        assert store.path == folder / "sessions.db"
        assert store.path.is_file()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        anyio.run(store.close)


def test_the_data_folder_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTPROC_DATA_DIR", str(tmp_path / "env-data"))
    assert default_data_dir() == tmp_path / "env-data"
    store = open_store()
    anyio.run(store.close)
    assert store.path == tmp_path / "env-data" / "sessions.db"
    monkeypatch.setenv("AGENTPROC_DATA_DIR", "~/agentproc-data")
    assert default_data_dir() == Path.home() / "agentproc-data"
    monkeypatch.delenv("AGENTPROC_DATA_DIR")
    assert default_data_dir() == Path(platformdirs.user_data_dir("agentproc", appauthor=False))
    monkeypatch.setenv("AGENTPROC_DATA_DIR", "")
    assert default_data_dir() == Path(platformdirs.user_data_dir("agentproc", appauthor=False))


def test_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError) as info:
        open_store(blocker / "data")
    assert f"cannot create the data folder {blocker / 'data'}" in str(info.value)
    assert "AGENTPROC_DATA_DIR" in info.value.hint


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    garbage = b"this is a text file, not SQLite\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(StoreError) as info:
        open_store(tmp_path)
    assert str(info.value).startswith(f"{path} is not a SQLite database")
    assert "move it aside" in info.value.hint
    assert path.read_bytes() == garbage, "the file was not touched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions.db"]


def test_a_path_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "sessions.db").mkdir()
    with pytest.raises(StoreError, match=r"cannot open the session store .*sessions\.db"):
        open_store(tmp_path)


def test_another_programs_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")
        db.commit()
    with pytest.raises(StoreError, match="not an agentproc session store"):
        open_store(tmp_path)
    with closing(sqlite3.connect(path)) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master")]
        assert names == ["notes"]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",), "not switched to WAL"


def test_migration_versions_count_up_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def schema_versions(path: Path) -> list[int]:
    with closing(sqlite3.connect(path)) as db:
        return [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY version")]


#: What the first release writes: a frozen copy, so a change to migration 1
#: (instead of a new step) shows up here as a file that no longer opens.
SCHEMA_V1 = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL);
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY, channel TEXT NOT NULL, key TEXT NOT NULL, profile TEXT NOT NULL,
    session_id TEXT NOT NULL DEFAULT '', session_name TEXT NOT NULL DEFAULT 'default',
    turn_count INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    last_status TEXT NOT NULL DEFAULT '', state TEXT, UNIQUE (channel, key, profile));
CREATE INDEX conversations_by_update ON conversations (updated_at);
CREATE TABLE transcript (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    turn INTEGER NOT NULL, message TEXT NOT NULL, attachments TEXT NOT NULL DEFAULT '[]',
    reply TEXT NOT NULL DEFAULT '', error TEXT, session_id TEXT NOT NULL DEFAULT '',
    exit_code INTEGER NOT NULL DEFAULT 0, from_user TEXT NOT NULL DEFAULT '',
    started_at REAL NOT NULL DEFAULT 0, duration_ms INTEGER NOT NULL DEFAULT 0);
CREATE INDEX transcript_by_conversation ON transcript (conversation_id, id);
INSERT INTO schema_version VALUES (1, 0);
INSERT INTO conversations VALUES
    (1, 'terminal', 'alice', 'echo', 's1', 'default', 1, 10.0, 20.0, 'ok', '{"a": 1}');
INSERT INTO transcript VALUES (1, 1, 1, 'hi', '[]', 'You said: hi', NULL, 's1', 0, '', 9.5, 12);
"""


def write_v1(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA_V1)


@pytest.mark.anyio
async def test_a_first_release_file_opens(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    write_v1(path)
    async with SQLiteStore(path) as store:
        assert await store.get(K) == Conversation(K, "s1", "default", 1, 10.0, 20.0, "ok")
        assert await store.transcript(K) == [
            TranscriptEntry(1, "hi", "You said: hi", None, "s1", 0, [], "", 9.5, 12)
        ]
        assert await store.get_state(K) == {"a": 1}
        assert (await turn(store)).turn_count == 2
    assert schema_versions(path) == [1]


V2 = Migration(2, "a note per conversation", ("ALTER TABLE conversations ADD COLUMN note TEXT",))


@pytest.mark.anyio
async def test_a_new_step_upgrades_an_old_file_and_keeps_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sessions.db"
    write_v1(path)
    monkeypatch.setattr(store_sqlite, "MIGRATIONS", (*MIGRATIONS, V2))
    async with SQLiteStore(path) as store:
        assert (await store.get(K)) is not None
    assert schema_versions(path) == [1, 2]
    with closing(sqlite3.connect(path)) as db:
        assert "note" in [r[1] for r in db.execute("PRAGMA table_info(conversations)")]
    # Opening again with the same steps changes nothing.
    await SQLiteStore(path).close()
    assert schema_versions(path) == [1, 2]
    # The older agentproc (without step 2) refuses the upgraded file.
    monkeypatch.undo()
    with pytest.raises(StoreError, match="newer agentproc") as info:
        SQLiteStore(path)
    assert "upgrade agentproc" in info.value.hint
    assert str(path) in str(info.value)


def test_a_failing_step_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sessions.db"
    write_v1(path)
    broken = Migration(2, "broken", ("CREATE TABLE extra (x)", "THIS IS NOT SQL"))
    monkeypatch.setattr(store_sqlite, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(StoreError, match=r"to schema version 2 \(broken\)") as info:
        SQLiteStore(path)
    assert "left at version 1" in info.value.hint
    assert schema_versions(path) == [1]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchone() is None
    monkeypatch.undo()
    anyio.run(SQLiteStore(path).close)


def test_a_file_from_a_newer_agentproc_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    anyio.run(SQLiteStore(path).close)
    with closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO schema_version VALUES (99, 0)")
        db.commit()
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert str(info.value).startswith(f"the session store {path} was written by a newer")
    assert "schema version 99" in str(info.value)


def test_two_stores_on_one_file_in_two_threads(tmp_path: Path) -> None:
    """Two bridges in one process (two connections), plus a reader listing
    conversations the whole time, as `agentproc sessions list` would."""
    path = tmp_path / "sessions.db"
    anyio.run(SQLiteStore(path).close)  # set up first: the threads race on writes only
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(name: str) -> None:
        async def main() -> None:
            async with SQLiteStore(path, transcript_limit=20) as store:
                for i in range(300):
                    key = ConversationKey("thread", f"c{i % 5}", "echo")
                    await store.record_turn(
                        key, entry(i, name), captured_session=name, status=STATUS_OK
                    )

        try:
            anyio.run(main)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        async def main() -> None:
            async with SQLiteStore(path) as store:
                while not done.is_set():
                    for conv in await store.conversations():
                        await store.transcript(conv.key, limit=5)

        try:
            anyio.run(main)
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    watcher = threading.Thread(target=reader)
    for t in (*writers, watcher):
        t.start()
    for t in writers:
        t.join()
    done.set()
    watcher.join()
    assert errors == []

    async def check() -> None:
        async with SQLiteStore(path, transcript_limit=20) as store:
            convs = await store.conversations()
            assert sum(c.turn_count for c in convs) == 600
            for conv in convs:
                assert len(await store.transcript(conv.key)) == 20

    anyio.run(check)


#: A writer process: opens the store, waits for a line on stdin, then records
#: turns (forever with -1), printing "going" after 50 so the parent knows it
#: is in full swing.
WRITER = """
import sys
import anyio
from bridge.store.sessions import ConversationKey, TranscriptEntry
from bridge.store.sqlite import SQLiteStore

path, name, turns, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def main():
    async with SQLiteStore(path, transcript_limit=limit) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        i = 0
        while i != turns:
            key = ConversationKey("proc", f"c{i % 7}", "echo")
            conv = await store.get(key)
            n = (conv.turn_count if conv else 0) + 1
            text = f"{name} turn {n} " * (i % 40)
            await store.record_turn(
                key,
                TranscriptEntry(turn=n, message=text, reply=text[::-1]),
                captured_session=f"{name}-{i}" if i % 3 else None,
                status="ok",
            )
            i += 1
            if i == 50:
                print("going", flush=True)

anyio.run(main)
"""


def start_writer(path: Path, name: str, turns: int, limit: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [PY, "-c", WRITER, str(path), name, str(turns), str(limit)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line != b"ready\n":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"writer did not start: {line!r}\n{err.decode(errors='replace')}")
    return proc


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    anyio.run(SQLiteStore(path).close)
    procs = [start_writer(path, name, 300, 1000) for name in ("a", "b")]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode(errors="replace")

    async def check() -> None:
        async with SQLiteStore(path, transcript_limit=1000) as store:
            convs = await store.conversations()
            assert sum(c.turn_count for c in convs) == 600
            for conv in convs:
                assert len(await store.transcript(conv.key)) == conv.turn_count

    anyio.run(check)


def check_consistent(path: Path, limit: int) -> int:
    """Integrity, and each conversation's count matching its transcript;
    returns the number of turns recorded so far."""
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = db.execute(
            "SELECT c.turn_count, count(t.id), max(t.turn) FROM conversations c "
            "LEFT JOIN transcript t ON t.conversation_id = c.id GROUP BY c.id"
        ).fetchall()
    for turn_count, kept, last in rows:
        assert kept == min(turn_count, limit)
        assert last == turn_count, "the newest entry belongs to the newest count"
    return sum(r[0] for r in rows)


def test_a_writer_killed_mid_turn_leaves_a_consistent_file(tmp_path: Path) -> None:
    """SIGKILL a writer in full swing at a random moment, eight times on one
    file. A store that split a turn over several transactions fails this in
    most runs (the kill must land between two of them); a correct one never."""
    path = tmp_path / "sessions.db"
    limit = 5
    recorded = 0
    for round_ in range(8):
        proc = start_writer(path, f"w{round_}", -1, limit)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == b"going\n"
            threading.Event().wait(random.uniform(0.0, 0.05))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        total = check_consistent(path, limit)
        assert total >= recorded + 50
        recorded = total

    async def reopen() -> None:
        async with SQLiteStore(path, transcript_limit=limit) as store:
            convs = await store.conversations(channel="proc")
            assert sum(c.turn_count for c in convs) == recorded
            conv = await turn(store, convs[0].key)
            assert conv.turn_count == convs[0].turn_count + 1

    anyio.run(reopen)
    check_consistent(path, limit)
