"""The SQLite log store: the contract, then what only a file can show.

Real files throughout: two stores on one file (as two processes would hold
it), a second process writing while this one reads, read-only opens that
must not touch anything, the upgrade of a file written by the first release
(``tests/data/sessions-v1.sql``, made by that release's own store), and
files that are not ours or are newer than us.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest
from store_contract import (
    KEY,
    LEASE,
    T0,
    FakeClock,
    StoreContract,
    StoreFactory,
    outcome,
    whole_turn,
)

from bridge.store.errors import ReadOnlyStore, SchemaTooNew, StoreError
from bridge.store.records import (
    MESSAGE,
    STATUS_CANCELLED,
    STATUS_ERROR,
    STATUS_OK,
    TURN_COMPLETED,
    TURN_PARTIAL,
    ConversationKey,
    Event,
    NewMessage,
    Route,
    TranscriptTurn,
)
from bridge.store.sqlite import SQLiteStore, open_store
from bridge.store.sqlite_schema import CURRENT, MIGRATIONS, carried_over_id

ROOT = Path(__file__).resolve().parent.parent
V1_SQL = Path(__file__).parent / "data" / "sessions-v1.sql"


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        def make(**kw: Any) -> SQLiteStore:
            return SQLiteStore(tmp_path / "data" / "sessions.db", **kw)

        return make


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- helpers ------------------------------------------------------------------------------------


def v1_file(path: Path, *, wal: bool = True) -> Path:
    """A first-release store rebuilt from its dump (in WAL mode, as that
    release left its files, unless ``wal`` is False)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as db:
        db.executescript(V1_SQL.read_text(encoding="utf-8"))
        if wal:
            db.execute("PRAGMA journal_mode = WAL")
    return path


def v1_rows(path: Path) -> tuple[list[tuple[Any, ...]], dict[int, list[tuple[Any, ...]]]]:
    """The first-release file's conversations and transcript rows, read raw."""
    with closing(sqlite3.connect(path)) as db:
        convs = db.execute(
            "SELECT id, channel, key, profile, session_id, session_name, turn_count, "
            "created_at, updated_at, last_status, state FROM conversations ORDER BY id"
        ).fetchall()
        turns: dict[int, list[tuple[Any, ...]]] = {}
        for row in db.execute(
            "SELECT conversation_id, turn, message, attachments, reply, error, session_id, "
            "exit_code, from_user, started_at, duration_ms FROM transcript ORDER BY id"
        ):
            turns.setdefault(row[0], []).append(row[1:])
    return convs, turns


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in the folder: its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def tables(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]


# --- two stores, two processes --------------------------------------------------------------------


@pytest.mark.anyio
async def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SQLiteStore(path) as a, SQLiteStore(path) as b:
        conv = await a.open(KEY)
        assert await b.lookup(KEY) == conv
        va, vb = await a.version(), await b.version()
        event, _ = await a.add_message(conv.id, NewMessage("from a"))
        assert await a.version() != va and await b.version() != vb
        assert await b.read(conv.id) == [event]
        assert await b.claim(conv.id, "b", lease_secs=LEASE) is not None
        assert await a.claim(conv.id, "a", lease_secs=LEASE) is None, "b holds it"
        second, _ = await b.add_message(conv.id, NewMessage("from b"))
        assert second.id == event.id + 1, "ids come from the file, not from either store"
        assert [e.id for e in await a.read(conv.id)] == [1, 2]


CHILD = textwrap.dedent(
    """
    import sys
    import anyio
    from bridge.store.sqlite import SQLiteStore

    async def main(path, conv_id, chunks):
        async with SQLiteStore(path) as store:
            claim = await store.claim(conv_id, "child", lease_secs=60)
            conv, _ = await store.take(
                conv_id, "child", [e.id for e in claim.pending], text="go"
            )
            turn = conv.running_turn
            await store.start(conv_id, "child", turn, "")
            offset = 0
            for n in range(chunks):
                text = f"chunk {n};"
                await store.append(
                    conv_id, "child", turn, "turn.partial", {"text": text, "offset": offset}
                )
                offset += len(text)
            done = {"status": "ok", "reply": "all sent", "session_id": "child-s",
                    "exit_code": 0, "error": None, "hint": "", "warnings": [],
                    "timed_out": False, "duration_ms": 1}
            await store.complete(conv_id, "child", turn, done,
                                 captured_session="child-s", epoch=conv.reset_epoch)

    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
    """
)


@pytest.mark.anyio
async def test_a_second_process_writes_while_this_one_reads(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    chunks = 300
    async with SQLiteStore(path) as store:
        conv = await store.open(KEY)
        await store.add_message(conv.id, NewMessage("go"))
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), conv.id, str(chunks)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
        )
        seen: list[Event] = []
        mine = 0
        version = await store.version()
        try:
            with anyio.fail_after(60):
                while not seen or seen[-1].type != TURN_COMPLETED or mine < 20:
                    now = await store.version()
                    if now != version:  # only a changed version says there is more
                        version = now
                        seen += await store.read(conv.id, after=seen[-1].id if seen else 0)
                    if mine < 20:
                        await store.add_message(conv.id, NewMessage(f"meanwhile {mine}"))
                        mine += 1
                    await anyio.sleep(0.002)
        finally:
            _, err = await anyio.to_thread.run_sync(child.communicate)
        assert child.returncode == 0, err.decode(errors="replace")
        seen += await store.read(conv.id, after=seen[-1].id)
        assert [e.id for e in seen] == list(range(1, len(seen) + 1)), "dense, nothing missed"
        partials = [e.data["text"] for e in seen if e.type == TURN_PARTIAL]
        assert partials == [f"chunk {n};" for n in range(chunks)]
        assert sum(e.type == MESSAGE for e in seen) == 21
        assert [e.type for e in seen].count(TURN_COMPLETED) == 1
        final = await store.get(conv.id)
        assert final is not None and (final.session_id, final.last_event) == ("child-s", len(seen))


# --- reading only ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_read_only_creates_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "missing" / "data"
    async with open_store(folder, read_only=True) as store:
        assert store.read_only is True
        assert await store.conversations() == []
        assert await store.get("c123456") is None
        assert await store.lookup(KEY) is None
        assert isinstance(await store.version(), int)
        with pytest.raises(ReadOnlyStore, match="opened for reading only"):
            await store.open(KEY)
    assert not (tmp_path / "missing").exists()


@pytest.mark.anyio
@pytest.mark.parametrize("wal", [True, False])
async def test_read_only_reads_an_old_file_untouched(tmp_path: Path, wal: bool) -> None:
    path = v1_file(tmp_path / "sessions.db", wal=wal)
    before = snapshot(tmp_path)
    async with SQLiteStore(path, read_only=True) as store:
        convs = await store.conversations()
        assert len(convs) == 4
        echo = await store.get(carried_over_id("terminal", "default", "echo"))
        assert echo is not None and echo.session_id == "s-echo-2"
        assert [t.turn for t in await store.transcript(echo.id)] == [1, 2, 3]
        writes = [
            store.open(KEY),
            store.add_message(echo.id, NewMessage("x")),
            store.set_state(echo.id, 1),
            store.delete(echo.id),
            store.prune(T0),
            store.cancel(echo.id),
            store.reset(echo.id),
            store.ack("tg", echo.id, 1),
            store.claim(echo.id, "o", lease_secs=1),
            store.recover(echo.id),
            store.complete(echo.id, "o", 1, outcome(), captured_session=None, epoch=0),
        ]
        for write in writes:
            with pytest.raises(ReadOnlyStore, match=r"sessions\.db was opened for reading only"):
                await write
    assert snapshot(tmp_path) == before, "no byte, time or file changed"
    assert tables(path) == ["conversations", "schema_version", "transcript"]


@pytest.mark.anyio
async def test_read_only_follows_a_running_writer(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SQLiteStore(path) as writer:
        conv = await writer.open(KEY)
        async with SQLiteStore(path, read_only=True) as reader:
            version = await reader.version()
            event, _ = await writer.add_message(conv.id, NewMessage("hi"))
            assert await reader.version() != version
            assert await reader.read(conv.id) == [event]


@pytest.mark.anyio
async def test_read_only_on_a_closed_store_leaves_no_files(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SQLiteStore(path) as writer:
        conv = await writer.open(KEY)
    before = snapshot(tmp_path)
    assert list(before) == ["sessions.db"]
    async with SQLiteStore(path, read_only=True) as reader:
        assert await reader.get(conv.id) == conv
    assert snapshot(tmp_path) == before


# --- the upgrade from the first release -----------------------------------------------------------


def expected_turns(rows: list[tuple[Any, ...]]) -> list[TranscriptTurn]:
    out = []
    for turn, message, files, reply, error, session, code, user, started, ms in rows:
        out.append(
            TranscriptTurn(
                turn=turn,
                message=message,
                attachments=tuple(json.loads(files)),
                from_users=(user,) if user else (),
                status=STATUS_CANCELLED if code == 130 else STATUS_ERROR if error else STATUS_OK,
                reply=reply,
                error=error,
                session_id=session,
                exit_code=code,
                started_at=started,
                duration_ms=ms,
            )
        )
    return out


@pytest.mark.anyio
async def test_the_first_releases_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = v1_file(tmp_path / "sessions.db")
    old_convs, old_turns = v1_rows(path)
    assert len(old_convs) == 4 and sum(len(t) for t in old_turns.values()) == 8

    async with SQLiteStore(path, clock=FakeClock()) as store:
        assert len(await store.conversations()) == len(old_convs)
        for (
            old_id,
            channel,
            key,
            profile,
            session,
            name,
            count,
            created,
            updated,
            status,
            state,
        ) in old_convs:
            conv = await store.get(carried_over_id(channel, key, profile))
            assert conv is not None, (channel, key, profile)
            assert conv.key == ConversationKey(channel, key, Route(profile, "", profile))
            assert conv.label == f"{channel}:{key}@{profile}"
            assert await store.find(conv.label) == [conv]
            assert (conv.session_id, conv.session_name, conv.turn_count) == (session, name, count)
            assert (conv.created_at, conv.updated_at, conv.last_status) == (
                created,
                updated,
                status,
            )
            assert (conv.running_turn, conv.lease_owner, conv.first_event) == (0, "", 1)
            assert await store.get_state(conv.id) == (None if state is None else json.loads(state))
            rows = old_turns.get(old_id, [])
            assert await store.transcript(conv.id) == expected_turns(rows)
            assert conv.last_event == 4 * len(rows)
            events = await store.read(conv.id)
            assert [e.id for e in events] == list(range(1, conv.last_event + 1))
            assert conv.consumed == max((e.id for e in events if e.type == MESSAGE), default=0)
        echo = await store.find("terminal:default@echo")
        assert [t.status for t in await store.transcript(echo[0].id)] == [
            STATUS_OK,
            STATUS_ERROR,
            STATUS_CANCELLED,
        ]
        odd = (await store.find("slack:a@b:c@d@team:bot@v2"))[0]
        assert [t.turn for t in await store.transcript(odd.id)] == [3, 4, 5], "old retention kept"

        # The first open from a route with that profile name adopts it.
        route = Route("bundled:echo", "/work/app", "echo")
        adopted = await store.open(ConversationKey("terminal", "default", route))
        assert (adopted.id, adopted.session_id, adopted.turn_count) == (echo[0].id, "s-echo-2", 3)
        done = await whole_turn(store, adopted.id, session="s-new")
        assert (done.turn_count, done.session_id) == (4, "s-new")

    assert tables(path) == [
        "active_messages",
        "conversations",
        "deliveries",
        "events",
        "pairings",
        "schema_version",
        "subscriptions",
    ]
    with closing(sqlite3.connect(path)) as db:
        assert [r[0] for r in db.execute("SELECT version FROM schema_version")] == [1, 2, 3, 4]
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    async with SQLiteStore(path) as again:  # a second open changes nothing
        assert len(await again.conversations()) == 4


@pytest.mark.anyio
async def test_read_only_and_the_upgrade_agree_on_ids(tmp_path: Path) -> None:
    path = v1_file(tmp_path / "sessions.db")
    async with SQLiteStore(path, read_only=True) as reader:
        seen = sorted(c.id for c in await reader.conversations())
    async with SQLiteStore(path) as writer:
        assert sorted(c.id for c in await writer.conversations()) == seen


def test_migration_versions_count_up_and_step_1_is_frozen(tmp_path: Path) -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, CURRENT + 1))
    # Step 1 builds exactly the schema the first release wrote.
    with closing(sqlite3.connect(":memory:")) as db:
        for statement in MIGRATIONS[0].statements:
            db.execute(statement)
        built = sorted(db.execute("SELECT type, name, sql FROM sqlite_master"))
    with closing(sqlite3.connect(v1_file(tmp_path / "v1.db", wal=False))) as db:
        released = sorted(db.execute("SELECT type, name, sql FROM sqlite_master"))
    assert built == released


# --- files that are not ours ----------------------------------------------------------------------


@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_that_is_not_a_database_is_refused_untouched(
    tmp_path: Path, read_only: bool
) -> None:
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is a text file, not SQLite\n" * 200)
    before = snapshot(tmp_path)
    with pytest.raises(StoreError, match="is not a SQLite database") as info:
        SQLiteStore(path, read_only=read_only)
    assert "move it aside" in info.value.hint
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("read_only", [False, True])
def test_another_programs_database_is_refused_untouched(tmp_path: Path, read_only: bool) -> None:
    path = tmp_path / "sessions.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")
        db.commit()
    before = snapshot(tmp_path)
    with pytest.raises(StoreError, match="not an agentproc session store"):
        SQLiteStore(path, read_only=read_only)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("read_only", [False, True])
def test_a_newer_schema_is_refused(tmp_path: Path, read_only: bool) -> None:
    path = tmp_path / "sessions.db"
    anyio.run(SQLiteStore(path).close)
    with closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO schema_version VALUES (?, 0)", (CURRENT + 7,))
        db.commit()
    before = snapshot(tmp_path)
    with pytest.raises(SchemaTooNew) as info:
        SQLiteStore(path, read_only=read_only)
    assert str(info.value).startswith(
        f"the session store {path} was written by a newer agentproc "
        f"(schema version {CURRENT + 7}; this one knows up to {CURRENT})"
    )
    assert "upgrade agentproc" in info.value.hint
    assert snapshot(tmp_path) == before


def test_the_folder_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTPROC_DATA_DIR", str(tmp_path / "agentproc"))
    store = open_store()
    assert store.path == tmp_path / "agentproc" / "sessions.db"
    anyio.run(store.close)
    assert stat.S_IMODE((tmp_path / "agentproc").stat().st_mode) == 0o700


def test_a_folder_in_the_way_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "sessions.db").mkdir()
    with pytest.raises(StoreError, match=r"cannot open the session store .*sessions\.db"):
        SQLiteStore(tmp_path / "sessions.db")


@pytest.mark.anyio
async def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sessions.db")
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="is closed"):
        await store.conversations()


# --- the file itself ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_retention_deletes_rows_and_delete_cascades(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SQLiteStore(path, keep_turns=1) as store:
        conv = await store.open(KEY)
        for _ in range(3):
            await whole_turn(store, conv.id)
        await store.ack("tg", conv.id, 1)
        await store.add_message(conv.id, NewMessage("waiting"))
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT count(*) FROM events").fetchone() == (5,)
            assert db.execute("SELECT count(*) FROM active_messages").fetchone() == (1,)
        await store.delete(conv.id)
        with closing(sqlite3.connect(path)) as db:
            for table in ("events", "active_messages", "deliveries", "conversations"):
                assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_turn_lookups_use_the_partial_index(tmp_path: Path) -> None:
    from bridge.store import sqlite_rows

    path = tmp_path / "sessions.db"
    anyio.run(SQLiteStore(path).close)
    with closing(sqlite3.connect(path)) as db:
        for where in (
            f"conversation_id = ? AND {sqlite_rows.OF_TURNS} AND type = ? AND turn = ?",
            f"conversation_id = ? AND {sqlite_rows.OF_TURNS} AND turn >= ?",
        ):
            plan = db.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM events WHERE {where}",
                ("c", "t", 1)[: where.count("?")],
            ).fetchall()
            assert "events_of_turns" in str(plan), plan


def test_read_only_open_refuses_a_data_folder_that_is_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "data"
    afile.write_text("not a folder")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        SQLiteStore(afile / "sessions.db", read_only=True)
    assert afile.read_text() == "not a folder"


def test_a_store_set_up_between_two_looks_is_not_taken_for_a_stranger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process sets the new file up between this one's look at its
    # schema version (none yet) and its look for foreign tables.
    import bridge.store.sqlite as sqlite_module

    path = tmp_path / "sessions.db"
    anyio.run(SQLiteStore(path).close)  # the other process, done
    monkeypatch.setattr(sqlite_module, "refuse_newer", lambda conn, path: 0)  # the stale look
    anyio.run(SQLiteStore(path).close)


OPEN_ONLY = "import sys; from bridge.store.sqlite import SQLiteStore; SQLiteStore(sys.argv[1])"


def test_processes_setting_up_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    # Each sees the file half-way: empty, being set up, or ready; none may
    # take another agentproc's fresh tables for a stranger's database.
    path = tmp_path / "sessions.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_ONLY, str(path)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
