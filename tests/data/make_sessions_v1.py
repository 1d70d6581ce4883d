"""Writes ``sessions-v1.sql``: a session store as the first release builds it.

Kept for the record of how the fixture was made. It runs only while the
first release's ``bridge/store_sqlite.py`` exists; the SQL it wrote is what
the tests read, so they do not depend on that module.

    PYTHONPATH=. python tests/data/make_sessions_v1.py   (from the repository root)
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import anyio
from bridge.sessions import ConversationKey, TranscriptEntry
from bridge.store_sqlite import SQLiteStore

HERE = Path(__file__).parent
T0 = 1_700_000_000.0


async def build(path: Path) -> None:
    ticks = iter(range(10_000))
    store = SQLiteStore(path, transcript_limit=3, clock=lambda: T0 + next(ticks))
    echo = ConversationKey("terminal", "default", "echo")
    tele = ConversationKey("telegram", "chat:42", "claude-code")
    odd = ConversationKey("slack", "a@b:c@d", "team:bot@v2")
    quiet = ConversationKey("http", "only-state", "echo")
    async with store:
        turns = [
            (echo, "hello", "You said: hello", None, "s-echo", 0, "ok", [], "alice"),
            (echo, "fail please", "", "boom: the agent failed", "s-echo", 1, "error", [], ""),
            (echo, "long job", "partial", "cancelled", "s-echo-2", 130, "cancelled", [], ""),
            (
                tele,
                "what is in this picture? ✓",
                "a cat",
                None,
                "sess-tele",
                0,
                "ok",
                [{"type": "image", "url": "https://example.com/cat.png"}],
                "tg:123",
            ),
            (tele, "slow", "", "timed out after 2 s", "sess-tele", 124, "timeout", [], "tg:123"),
            (odd, "one", "1", None, "", 0, "ok", [], "U1"),
            (odd, "two", "2", None, "odd-2", 0, "ok", [], "U1"),
            (odd, "three", "3", None, "odd-3", 0, "ok", [], "U2"),
            (
                odd,
                "four",
                "4",
                None,
                "odd-3",
                0,
                "ok",
                [{"type": "file", "url": "file:///tmp/a.txt", "name": "a.txt"}],
                "U2",
            ),
            (odd, "five", "", "no", "", 2, "error", [], "U1"),
        ]
        counts: dict[ConversationKey, int] = {}
        for key, message, reply, error, session, code, status, attachments, user in turns:
            counts[key] = counts.get(key, 0) + 1
            entry = TranscriptEntry(
                turn=counts[key],
                message=message,
                reply=reply,
                error=error,
                session_id=session,
                exit_code=code,
                attachments=attachments,
                from_user=user,
                started_at=T0 + 100 * counts[key],
                duration_ms=10 * counts[key],
            )
            captured = session if code in (0, 1, 130) and session else None
            await store.record_turn(key, entry, captured_session=captured, status=status)
        await store.set_state(echo, {"mode": "terse", "n": [1, 2]})
        await store.set_state(quiet, {"only": "state"})
        await store.reset(tele)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sessions.db"
        anyio.run(build, path)
        conn = sqlite3.connect(path)
        text = "\n".join(conn.iterdump()) + "\n"
        conn.close()
    (HERE / "sessions-v1.sql").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
