"""JSONL history: round trips, safe file names, private permissions, concurrent appends."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agentproc import HistoryEntry, append_history, load_history, session_file_path, wire


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "agentproc-home"
    monkeypatch.setenv(wire.ENV_HOME, str(root))
    return root


def session_file(home: Path, session_id: str) -> Path:
    return home / "sessions" / f"{session_id}.jsonl"


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_round_trip(home: Path) -> None:
    first = append_history("s1", "user", "hello")
    second = append_history("s1", HistoryEntry("assistant", "hi!\nhow can I help?", meta={"n": 1}))
    assert load_history("s1") == [first, second]
    assert second.meta == {"n": 1}
    lines = session_file(home, "s1").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2, "a newline in content stays inside one JSON line"
    assert json.loads(lines[0]) == {
        "role": "user",
        "content": "hello",
        "timestamp": first.timestamp,
    }


def test_list_form_as_the_documentation_writes_it(home: Path) -> None:
    written = append_history(
        "s1",
        [
            HistoryEntry(role="user", content="hello"),
            HistoryEntry(role="assistant", content="hi", timestamp="2024-01-02T03:04:05Z"),
        ],
    )
    assert [(e.role, e.content) for e in written] == [("user", "hello"), ("assistant", "hi")]
    assert written[0].timestamp is not None and written[1].timestamp == "2024-01-02T03:04:05Z"
    assert load_history("s1") == written
    assert append_history("s1", ()) == []
    assert append_history("s1", (HistoryEntry("user", "again"),))[0].content == "again"
    assert len(load_history("s1")) == 3


def test_session_file_path_refuses_what_is_not_an_id(home: Path) -> None:
    for bad in (5, None, b"s1"):
        with pytest.raises(ValueError, match="no history file for session id"):
            session_file_path(bad)  # type: ignore[arg-type]
    assert not home.exists()


def test_session_file_path(home: Path) -> None:
    path = session_file_path("abc-1")
    assert path == session_file(home, "abc-1")
    assert stat.S_IMODE(os.stat(home / "sessions").st_mode) == 0o700
    assert not path.exists(), "only the folders are made"
    append_history("abc-1", "user", "x")
    assert path.is_file()


# Lines as the reference SDK of this wire writes them: role, content and an
# ISO-8601 timestamp from datetime.isoformat(), nothing else.
REFERENCE_LINES = [
    {"role": "user", "content": "héllo\nthere", "timestamp": "2025-03-01T10:00:00.123456+00:00"},
    {"role": "assistant", "content": "hi 🎉", "timestamp": "2025-03-01T10:00:01+00:00"},
    {"role": "assistant", "content": None, "timestamp": "2025-03-01T10:00:02+00:00"},
]


def test_reads_history_files_the_reference_sdk_writes(home: Path) -> None:
    path = session_file_path("ref-1")
    with open(path, "w", encoding="utf-8") as f:
        for line in REFERENCE_LINES:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    entries = load_history("ref-1")
    assert [(e.role, e.content, e.timestamp) for e in entries] == [
        ("user", "héllo\nthere", "2025-03-01T10:00:00.123456+00:00"),
        ("assistant", "hi 🎉", "2025-03-01T10:00:01+00:00"),
        ("assistant", "", "2025-03-01T10:00:02+00:00"),
    ]
    append_history("ref-1", [HistoryEntry("user", "next")])
    assert len(load_history("ref-1")) == 4


def test_files_we_write_read_as_the_reference_reads_them(home: Path) -> None:
    """Every line has string role, content and timestamp; extra keys (meta) are ones
    a reader that looks up those three ignores."""
    append_history("s1", [HistoryEntry("user", "a"), HistoryEntry("assistant", "b", meta={"k": 1})])
    append_history("s1", "user", "c")
    rows = [json.loads(line) for line in session_file(home, "s1").read_text("utf-8").splitlines()]
    for row in rows:
        assert all(isinstance(row[key], str) for key in ("role", "content", "timestamp"))
        datetime.fromisoformat(row["timestamp"])
    assert [(r["role"], r["content"]) for r in rows] == [
        ("user", "a"),
        ("assistant", "b"),
        ("user", "c"),
    ]


def test_timestamp_is_iso_8601_utc_and_kept_when_given(home: Path) -> None:
    entry = append_history("s1", "user", "x")
    assert entry.timestamp is not None
    parsed = datetime.fromisoformat(entry.timestamp)
    assert parsed.utcoffset() == timedelta(0)
    kept = append_history("s1", HistoryEntry("user", "y", timestamp="2024-01-02T03:04:05Z"))
    assert kept.timestamp == "2024-01-02T03:04:05Z"
    assert load_history("s1")[-1].timestamp == "2024-01-02T03:04:05Z"


def test_limit_gives_the_newest_entries(home: Path) -> None:
    for i in range(5):
        append_history("s1", "user", str(i))
    assert [e.content for e in load_history("s1", limit=2)] == ["3", "4"]
    assert [e.content for e in load_history("s1", limit=50)] == ["0", "1", "2", "3", "4"]
    assert load_history("s1", limit=0) == []
    with pytest.raises(ValueError):
        load_history("s1", limit=-1)


def test_missing_session_is_empty(home: Path) -> None:
    assert load_history("never-written") == []


def test_default_root_is_dot_agentproc_in_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(wire.ENV_HOME, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    append_history("abc", "user", "x")
    assert (tmp_path / ".agentproc" / "sessions" / "abc.jsonl").is_file()


UNSAFE_IDS = [
    " ",
    ".",
    "..",
    "../x",
    "a/b",
    "/etc/passwd",
    "a\\b",
    " padded",
    "a\x00b",
    "x" * 257,
]


@pytest.mark.parametrize("session_id", UNSAFE_IDS)
def test_unsafe_ids_are_refused(home: Path, session_id: str) -> None:
    with pytest.raises(ValueError, match="cannot keep history for session id"):
        append_history(session_id, "user", "x")
    with pytest.raises(ValueError, match="cannot keep history for session id"):
        append_history(session_id, [HistoryEntry("user", "x")])
    with pytest.raises(ValueError, match="no history file for session id"):
        session_file_path(session_id)
    assert load_history(session_id) == []
    assert not home.exists(), "nothing is created for a refused id"


def test_empty_session_id_keeps_nothing_and_says_why(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first turn has no session id; the documented example still runs (the reference
    SDK skips it the same way), and stderr says how to start a session."""
    written = append_history("", [HistoryEntry(role="user", content="hi")])
    assert [e.content for e in written] == ["hi"]
    assert written[0].timestamp is not None
    entry = append_history("", "user", "hi")
    assert entry.content == "hi"
    err = capsys.readouterr().err
    assert err.count("agentproc: history not kept") == 2
    assert "AgentResult(reply, session_id=...)" in err
    assert not home.exists()
    with pytest.raises(ValueError, match="empty session id has no history file"):
        session_file_path("")


def test_traversal_cannot_read_a_file_outside(home: Path) -> None:
    (home / "sessions").mkdir(parents=True)
    (home / "secret.jsonl").write_text('{"role": "user", "content": "secret"}\n')
    assert load_history("../secret") == []


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_private_permissions_whatever_the_umask(home: Path, umask: None, mask: int) -> None:
    os.umask(mask)
    append_history("s1", "user", "x")
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home / "sessions").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(session_file(home, "s1")).st_mode) == 0o600


def test_symlink_at_the_session_path_is_not_followed(home: Path, tmp_path: Path) -> None:
    append_history("s1", "user", "x")
    target = tmp_path / "elsewhere.txt"
    target.write_text("")
    session_file(home, "s2").symlink_to(target)
    with pytest.raises(OSError):
        append_history("s2", "user", "x")
    assert target.read_text() == ""


def test_malformed_lines_are_skipped_with_one_warning(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = append_history("s1", "user", "good")
    with open(session_file(home, "s1"), "ab") as f:
        f.write(b"not json\n")
        f.write(b"[1, 2]\n")
        f.write(b'{"role": 5, "content": "x"}\n')
        f.write(b'{"role": "user", "content": "x", "meta": [1]}\n')
        f.write(b"\n   \n")
        f.write(b"\xff\xfe raw bytes\n")
        f.write(b"[" * 100_000 + b"\n")
        f.write(b'{"role": "user", "content": "caf\xe9"}\n')
        f.write(b'{"role": "assistant", "content": "torn')
    entries = load_history("s1")
    assert entries == [good, HistoryEntry("user", "caf\ufffd")]
    err = capsys.readouterr().err
    assert err.count("agentproc: skipped 7 unreadable line(s)") == 1


def test_text_that_utf8_cannot_carry_round_trips(home: Path) -> None:
    append_history("s1", "user", "lone \ud800 surrogate")
    append_history("s1", "user", "emoji 🎉 and ü")
    assert [e.content for e in load_history("s1")] == ["lone \ud800 surrogate", "emoji 🎉 and ü"]
    assert "🎉".encode() in session_file(home, "s1").read_bytes(), "plain UTF-8 when possible"


def test_meta_must_be_json(home: Path) -> None:
    with pytest.raises(TypeError, match="JSON-serialisable"):
        append_history("s1", HistoryEntry("user", "x", meta={"when": object()}))


def test_argument_errors(home: Path) -> None:
    with pytest.raises(TypeError, match="needs the content"):
        append_history("s1", "user")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        append_history("s1", 5)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="item 1 is dict"):
        append_history("s1", [HistoryEntry("user", "x"), {"role": "user"}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not both"):
        append_history("s1", [HistoryEntry("user", "x")], "y")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="not both"):
        append_history("s1", HistoryEntry("user", "x"), "content too")  # type: ignore[call-overload]
    assert not session_file(home, "s1").exists(), "a bad call writes nothing"
    with pytest.raises(ValueError):
        HistoryEntry("", "x")
    with pytest.raises(TypeError):
        HistoryEntry("user", None)  # type: ignore[arg-type]


def test_entry_dict_form_and_equality() -> None:
    entry = HistoryEntry("user", "x")
    assert entry.to_dict() == {"role": "user", "content": "x"}
    full = HistoryEntry("tool", "y", "2024-01-01T00:00:00+00:00", {"tool": "Bash"})
    assert HistoryEntry.from_dict(full.to_dict()) == full
    assert full != HistoryEntry("tool", "y", "2024-01-01T00:00:00+00:00")
    assert full != "tool"
    assert "meta={'tool': 'Bash'}" in repr(full)
    for bad in [
        None,
        [],
        {"content": "x"},
        {"role": "u"},
        {"role": "u", "content": "x", "timestamp": 1},
    ]:
        with pytest.raises(ValueError):
            HistoryEntry.from_dict(bad)


WRITER = """
import os, sys, time
from agentproc import HistoryEntry, append_history

worker, count, size, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print("ready", flush=True)
while not os.path.exists(go):  # start together, so the appends really overlap
    time.sleep(0.001)
for i in range(count):
    if int(worker) % 2:
        append_history("shared", "user", f"{worker}:{i}:" + worker * size)
    else:  # a pair in one call: it must land as two adjacent lines
        append_history("shared", [HistoryEntry("user", f"{worker}:{i}:" + worker * size),
                                  HistoryEntry("assistant", f"{worker}:{i}:" + worker * size)])
"""


def test_concurrent_appends_never_interleave(home: Path, tmp_path: Path) -> None:
    """Entries far larger than a pipe buffer or PIPE_BUF, from several processes at once."""
    workers, count, size = 4, 40, 96 * 1024
    go = tmp_path / "go"
    env = {**os.environ, wire.ENV_HOME: str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(count), str(size), str(go)],
            env=env,
            stdout=subprocess.PIPE,
        )
        for w in range(workers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=60) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    pairs = workers // 2  # the even workers write two entries per call
    expected = workers * count + pairs * count
    raw_lines = session_file(home, "shared").read_bytes().split(b"\n")
    assert raw_lines[-1] == b""
    assert len(raw_lines) - 1 == expected
    for raw in raw_lines[:-1]:
        json.loads(raw)  # every line is one whole entry
    entries = load_history("shared")
    assert len(entries) == expected
    seen = set()
    for index, entry in enumerate(entries):
        worker, i, filler = entry.content.split(":")
        assert filler == worker * size
        seen.add((worker, int(i)))
        if entry.role == "assistant":  # the second of a pair follows its first at once
            before = entries[index - 1]
            assert (before.role, before.content) == ("user", entry.content)
    assert seen == {(str(w), i) for w in range(workers) for i in range(count)}
    for w in range(workers):  # each writer's own entries stay in order
        mine = [int(e.content.split(":")[1]) for e in entries if e.content.startswith(f"{w}:")]
        assert mine == sorted(mine)
