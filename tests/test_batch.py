"""``agentproc batch``: real agents (small /bin/sh scripts) run through the real CLI.

Most tests run the command as a subprocess and read its result lines; the input
parser is also checked directly, table-driven.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import AGENTPROC, check_stderr, cli

from bridge.channels.batch import parse_input
from bridge.channels.errors import BatchInputError

#: Every result line has exactly these keys, with these types.
RESULT_TYPES: dict[str, type | tuple[type, ...]] = {
    "id": (str, int, float),
    "index": int,
    "reply": str,
    "session_id": str,
    "error": (str, type(None)),
    "exit_code": int,
    "timed_out": bool,
    "duration_ms": int,
}

# An agent for most tests: the message says what to do.
SCRIPT = """\
[ -n "$LOG" ] && echo "$AGENT_MESSAGE" >> "$LOG"
case "$AGENT_MESSAGE" in
  fail) echo 'AGENT_ERROR:"it broke"' ;;
  hang) exec sleep 30 ;;
  *) echo "You said: $AGENT_MESSAGE" ;;
esac
"""


def results(text: str) -> list[dict[str, object]]:
    """Parse result lines; each must be one whole JSON object with the listed keys."""
    assert text == "" or text.endswith("\n"), "a half-written last line"
    out = []
    for line in text.splitlines():
        rec = json.loads(line)
        assert isinstance(rec, dict)
        assert set(rec) == set(RESULT_TYPES), rec
        for key, types in RESULT_TYPES.items():
            assert isinstance(rec[key], types), (key, rec)
        out.append(rec)
    return out


def by_id(recs: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    ids = [r["id"] for r in recs]
    assert len(ids) == len(set(map(str, ids))), f"an id twice: {ids}"
    return {r["id"]: r for r in recs}


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_for(check: Callable[[], bool], timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def sh_agent(tmp_path: Path, make_profile: Callable[..., Path]) -> Callable[..., Path]:
    """A profile running a /bin/sh script."""
    counter = iter(range(1_000))

    def make(script: str = SCRIPT, **fields: object) -> Path:
        path = tmp_path / f"agent{next(counter)}.sh"
        path.write_text(script, encoding="utf-8")
        return make_profile("", command="/bin/sh", args=[str(path)], **fields)

    return make


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "log.txt"


@pytest.fixture
def logging_agent(sh_agent: Callable[..., Path], log: Path) -> Path:
    """SCRIPT, appending each message it gets to ``log``."""
    return sh_agent(env={"LOG": str(log)})


def logged(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- the happy path -----------------------------------------------------------------------


def test_fifty_plain_prompts(tmp_path: Path, sh_agent: Callable[..., Path]) -> None:
    prompts = [f"prompt number {n}" for n in range(1, 51)]
    src = write(tmp_path / "in.txt", "\n".join(prompts) + "\n")
    run = cli("batch", sh_agent(), src, "--concurrency", "8")
    assert run.code == 0, run.err
    recs = by_id(results(run.out))
    assert set(recs) == {str(n) for n in range(1, 51)}
    for n, prompt in enumerate(prompts, 1):
        rec = recs[str(n)]
        assert rec["reply"] == f"You said: {prompt}"
        assert rec["index"] == n - 1
        assert rec["error"] is None and rec["exit_code"] == 0 and rec["timed_out"] is False
    # stderr is not a terminal: no progress, only the summary.
    assert run.err.splitlines() == [run.err.strip()]
    assert run.err.startswith("batch: 50 items: 50 ok, 0 failed, 0 not run in ")


def test_output_file_is_appended_and_streaming_is_off(
    tmp_path: Path, sh_agent: Callable[..., Path]
) -> None:
    profile = sh_agent('echo "AGENT_PARTIAL:\\"lost\\""\necho "s=$AGENT_STREAMING"\n')
    out = write(tmp_path / "out.jsonl", "")
    src = write(tmp_path / "in.txt", "one\ntwo\n")
    run = cli("batch", profile, src, "-o", out)
    assert run.code == 0 and run.out == ""
    run = cli("batch", profile, src, "--output", out)
    assert run.code == 0
    recs = results(out.read_text())
    assert sorted(str(r["id"]) for r in recs) == ["1", "1", "2", "2"]  # both runs, appended
    assert {r["reply"] for r in recs} == {"s=0"}

    with out.open("a") as fh:
        fh.write('{"id": "1", "ind')  # a torn line: cut off, not glued to the next result
    run = cli("batch", profile, src, "-o", out)
    assert run.code == 0 and "incomplete" in run.err
    assert len(results(out.read_text())) == 6


def test_jsonl_session_and_attachments_reach_the_agent(
    tmp_path: Path, sh_agent: Callable[..., Path]
) -> None:
    profile = sh_agent(
        'echo "$AGENT_MESSAGE|$AGENT_SESSION_ID|$AGENT_IMAGE_URL"\necho "$AGENT_ATTACHMENTS"\n'
    )
    lines = [
        {"id": "a", "message": "first", "session_id": "sess-1"},
        {
            "id": 7,
            "message": "second",
            "attachments": [{"type": "image", "url": "https://x.test/cat.png", "name": "cat.png"}],
        },
        {"attachments": [{"type": "file", "url": "https://x.test/doc.pdf"}]},
        {"id": 2.5, "message": "third", "note": "not used"},
    ]
    src = write(tmp_path / "in.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    run = cli("batch", profile, src)
    assert run.code == 0, run.err
    assert "'note' is not used" in run.err
    recs = by_id(results(run.out))
    assert set(recs) == {"a", 7, "3", 2.5}  # ids kept as given; missing -> line number
    assert recs["a"]["reply"] == "first|sess-1|\n"
    assert recs["a"]["session_id"] == "sess-1"
    reply7 = str(recs[7]["reply"]).split("\n")
    assert reply7[0] == "second||https://x.test/cat.png"
    assert json.loads(reply7[1]) == [
        {"type": "image", "url": "https://x.test/cat.png", "name": "cat.png"}
    ]
    reply3 = str(recs["3"]["reply"]).split("\n")
    assert reply3[0] == "||"
    assert json.loads(reply3[1]) == [{"type": "file", "url": "https://x.test/doc.pdf"}]
    assert recs[2.5]["index"] == 3


def test_stdin_input(sh_agent: Callable[..., Path]) -> None:
    run = cli("batch", sh_agent(), "-", input=b"hello\n\nworld\r\n")
    assert run.code == 0, run.err
    recs = by_id(results(run.out))
    assert recs["1"]["reply"] == "You said: hello"
    assert recs["3"]["reply"] == "You said: world"


def test_a_bundled_profile_by_name(tmp_path: Path) -> None:
    from bridge.turn.bundled import bundled_names

    if "echo" not in bundled_names():
        pytest.skip("no bundled echo profile")
    run = cli("batch", "echo", "-", input=b"hi\n")
    assert run.code == 0, run.err
    assert results(run.out)[0]["reply"] == "You said: hi"


def test_a_failing_and_a_hanging_item_do_not_stop_the_others(
    tmp_path: Path, sh_agent: Callable[..., Path]
) -> None:
    src = write(tmp_path / "in.txt", "a\nfail\nb\nhang\nc\nd\n")
    started = time.monotonic()
    run = cli("batch", sh_agent(), src, "--timeout", "0.5", "-c", "2")
    assert time.monotonic() - started < 10
    assert run.code == 1
    recs = by_id(results(run.out))
    assert {k for k, r in recs.items() if r["error"] is None} == {"1", "3", "5", "6"}
    assert recs["2"]["error"] == "it broke" and recs["2"]["exit_code"] == 1
    assert recs["4"]["timed_out"] is True and recs["4"]["exit_code"] == 124
    assert "batch: 6 items: 4 ok, 2 failed, 0 not run" in run.err
    assert "failed: 2: exit 1: it broke" in run.err
    assert "failed: 4: exit 124: timed out" in run.err


def test_concurrency_cap_is_respected(
    tmp_path: Path, sh_agent: Callable[..., Path], log: Path
) -> None:
    profile = sh_agent(
        'echo "start" >> "$LOG"\nsleep 0.2\necho "end" >> "$LOG"\necho done\n',
        env={"LOG": str(log)},
    )
    src = write(tmp_path / "in.txt", "".join(f"m{n}\n" for n in range(12)))
    run = cli("batch", profile, src, "--concurrency", "3")
    assert run.code == 0, run.err
    assert len(results(run.out)) == 12
    running = peak = 0
    for event in logged(log):
        running += 1 if event == "start" else -1
        peak = max(peak, running)
    assert running == 0
    assert 2 <= peak <= 3


# --- resume -------------------------------------------------------------------------------


def test_resume_skips_done_ids_and_cuts_a_torn_last_line(
    tmp_path: Path, logging_agent: Path, log: Path
) -> None:
    src = write(tmp_path / "in.txt", "a\nb\nc\nd\ne\n")
    done = [
        {
            "id": "1",
            "index": 0,
            "reply": "x",
            "session_id": "",
            "error": None,
            "exit_code": 0,
            "timed_out": False,
            "duration_ms": 1,
        },
        {
            "id": "2",
            "index": 1,
            "reply": "x",
            "session_id": "",
            "error": None,
            "exit_code": 0,
            "timed_out": False,
            "duration_ms": 1,
        },
    ]
    out = write(tmp_path / "out.jsonl", "".join(json.dumps(d) + "\n" for d in done))
    with out.open("a") as fh:
        fh.write('{"id": "3", "index": 2, "re')  # a run killed mid-line
    run = cli("batch", logging_agent, src, "-o", out, "--resume")
    assert run.code == 0, run.err
    assert "incomplete" in run.err and "cut it off" in run.err
    assert sorted(logged(log)) == ["c", "d", "e"]
    recs = by_id(results(out.read_text()))
    assert set(recs) == {"1", "2", "3", "4", "5"}
    assert "(2 done before, skipped by --resume)" in run.err
    assert "batch: 5 items: 5 ok, 0 failed, 0 not run" in run.err

    # Everything done: nothing runs, still a success.
    log.unlink()
    run = cli("batch", logging_agent, src, "-o", out, "--resume")
    assert run.code == 0 and not log.exists()
    assert len(results(out.read_text())) == 5


def test_resume_counts_a_skipped_failure(tmp_path: Path, logging_agent: Path, log: Path) -> None:
    src = write(tmp_path / "in.txt", "a\nb\n")
    failed = {
        "id": "1",
        "index": 0,
        "reply": "",
        "session_id": "",
        "error": "no",
        "exit_code": 1,
        "timed_out": False,
        "duration_ms": 1,
    }
    out = write(tmp_path / "out.jsonl", json.dumps(failed) + "\n")
    run = cli("batch", logging_agent, src, "-o", out, "--resume")
    assert run.code == 1
    assert logged(log) == ["b"]
    assert "batch: 2 items: 1 ok, 1 failed, 0 not run (1 done before" in run.err


def test_resume_needs_an_output_file(tmp_path: Path, logging_agent: Path, log: Path) -> None:
    src = write(tmp_path / "in.txt", "a\n")
    run = cli("batch", logging_agent, src, "--resume")
    assert run.code == 2 and "--resume needs --output FILE" in run.err
    assert not log.exists()


# --- interrupting -------------------------------------------------------------------------


def test_sigint_stops_cleanly_and_resume_finishes(
    tmp_path: Path, sh_agent: Callable[..., Path]
) -> None:
    pids, flag = tmp_path / "pids", tmp_path / "hang"
    pids.mkdir()
    flag.touch()
    profile = sh_agent(
        'case "$AGENT_MESSAGE" in slow*)\n'
        f'  if [ -e "{flag}" ]; then echo $$ > "{pids}/$AGENT_MESSAGE.tmp"\n'
        f'    mv "{pids}/$AGENT_MESSAGE.tmp" "{pids}/$AGENT_MESSAGE"; exec sleep 30; fi ;;\n'
        "esac\n"
        'echo "ok $AGENT_MESSAGE"\n'
    )
    src = write(tmp_path / "in.txt", "fast1\nslow1\nslow2\nfast2\nfast3\n")
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [AGENTPROC, "batch", str(profile), str(src), "-o", str(out), "-c", "2"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: len(list(pids.iterdir())) == 2)
        agent_pids = [int(p.read_text()) for p in pids.iterdir()]
        assert all(alive(pid) for pid in agent_pids)
        proc.send_signal(signal.SIGINT)
        _, err_bytes = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    err = err_bytes.decode()
    check_stderr(err)
    assert proc.returncode == 130, err
    assert not any(alive(pid) for pid in agent_pids)
    assert "batch: stopping" in err
    assert "batch: 5 items: 1 ok, 0 failed, 4 not run; interrupted" in err
    assert [r["id"] for r in results(out.read_text())] == ["1"]  # no line for cancelled items

    flag.unlink()
    run = cli("batch", profile, src, "-o", out, "--resume")
    assert run.code == 0, run.err
    recs = by_id(results(out.read_text()))
    assert set(recs) == {"1", "2", "3", "4", "5"}
    assert recs["2"]["reply"] == "ok slow1"


def test_second_sigint_kills_at_once(tmp_path: Path, sh_agent: Callable[..., Path]) -> None:
    pid_file = tmp_path / "agent.pid"
    profile = sh_agent(
        f"trap '' TERM\necho $$ > '{pid_file}.tmp'\nmv '{pid_file}.tmp' '{pid_file}'\n"
        "while :; do sleep 0.1; done\n",
        kill_grace_secs=60,
    )
    src = write(tmp_path / "in.txt", "a\nb\n")
    proc = subprocess.Popen(
        [AGENTPROC, "batch", str(profile), str(src), "-c", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(pid_file.exists)
        pid = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)  # lets the first signal be handled alone
        proc.send_signal(signal.SIGINT)
        out, err_bytes = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    err = err_bytes.decode()
    check_stderr(err)
    assert proc.returncode == 130
    assert out == b""
    assert "killing" in err
    assert not alive(pid)


# --- bad input: exit 2, nothing runs -------------------------------------------------------

BAD_INPUTS = {
    "invalid JSON": ('{"message": "a"}\n{"message": \n', ":2: invalid JSON"),
    "not an object": ('{"message": "a"}\n["b"]\n', ":2: expected a JSON object"),
    "missing message": ('{"message": "a"}\n{"id": "x"}\n', ':2: no "message"'),
    "message not a string": ('{"message": "a"}\n{"message": 3}\n', ':2: "message" must be'),
    "duplicate id": (
        '{"id": "x", "message": "a"}\n{"id": "x", "message": "b"}\n',
        ':2: duplicate id "x" (first on line 1)',
    ),
    "number and string id clash": (
        '{"id": 1, "message": "a"}\n{"id": "1", "message": "b"}\n',
        ":2: duplicate id",
    ),
    "default id clash": ('{"message": "a"}\n{"id": "1", "message": "b"}\n', ":2: duplicate id"),
    "bad id type": ('{"id": [1], "message": "a"}\n', ':1: "id" must be'),
    "bad attachment": (
        '{"message": "a", "attachments": [{"type": "image"}]}\n',
        ":1: attachment 1: an attachment needs a non-empty url",
    ),
    "blank attachment url": (
        '{"message": "a", "attachments": [{"type": "image", "url": "   "}]}\n',
        ":1: attachment 1: url '   ': it is blank",
    ),
    "relative attachment url": (
        '{"message": "a", "attachments": [{"type": "file", "url": "notes.txt"}]}\n',
        ":1: attachment 1: url 'notes.txt': it is not a URL or an absolute path",
    ),
    "attachment url without a host": (
        '{"message": "a", "attachments": [{"type": "image", "url": "https:///x.png"}]}\n',
        "an https URL needs a host",
    ),
    "attachments not a list": ('{"message": "a", "attachments": {}}\n', ':1: "attachments"'),
    "bad session id": ('{"message": "a", "session_id": 5}\n', ':1: "session_id" must be'),
    "empty": ("\n  \n", "has no messages"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_refused_before_anything_runs(
    case: str, tmp_path: Path, logging_agent: Path, log: Path
) -> None:
    text, expected = BAD_INPUTS[case]
    src = write(tmp_path / "in.jsonl", text)
    run = cli("batch", logging_agent, src)
    assert run.code == 2
    assert expected in run.err
    assert run.out == ""
    assert not log.exists()


def test_every_bad_line_is_reported_at_once(tmp_path: Path, logging_agent: Path, log: Path) -> None:
    src = write(tmp_path / "in.jsonl", "".join(text for text, _ in BAD_INPUTS.values()))
    out = tmp_path / "out.jsonl"
    run = cli("batch", logging_agent, src, "-o", out)
    assert run.code == 2
    assert "problems; nothing was run" in run.err
    assert len([ln for ln in run.err.splitlines() if ln.startswith(f"  {src}:")]) >= 11
    assert not log.exists() and not out.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--concurrency", "0"], "--concurrency"),
        (["--timeout", "0"], "--timeout"),
        (["--format", "csv"], "--format"),
    ],
)
def test_bad_options(
    args: list[str], expected: str, tmp_path: Path, logging_agent: Path, log: Path
) -> None:
    src = write(tmp_path / "in.txt", "a\n")
    run = cli("batch", logging_agent, src, *args)
    assert run.code == 2 and expected in run.err
    assert not log.exists()


def test_missing_input_profile_or_command(
    tmp_path: Path, make_profile: Callable[..., Path], logging_agent: Path
) -> None:
    src = write(tmp_path / "in.txt", "a\n")
    run = cli("batch", logging_agent, tmp_path / "absent.txt")
    assert run.code == 2 and "cannot read the input" in run.err
    run = cli("batch", tmp_path / "absent.yaml", src)
    assert run.code == 2 and run.err.startswith("error: ")
    missing = make_profile("", command=str(tmp_path / "no-such-agent"))
    out = tmp_path / "out.jsonl"
    run = cli("batch", missing, src, "-o", out)
    assert run.code == 2 and "command not found" in run.err and "nothing was run" in run.err
    assert not out.exists()
    run = cli("batch", logging_agent, src, "-o", src)
    assert run.code == 2 and "--output is the INPUT file" in run.err


# --- progress on a terminal ---------------------------------------------------------------


def test_progress_bar_on_a_terminal(tmp_path: Path, sh_agent: Callable[..., Path]) -> None:
    src = write(tmp_path / "in.txt", "a\nb\nfail\n")
    out = tmp_path / "out.jsonl"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [AGENTPROC, "batch", str(sh_agent()), str(src), "-o", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 10)
            if not ready:
                break
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=10)
    finally:
        os.close(master)
        proc.kill()
        proc.wait()
    err = b"".join(chunks).decode()
    check_stderr(err)
    assert proc.returncode == 1
    assert "\r[" in err and "3/3  ok 2  failed 1  running 0" in err
    assert "batch: 3 items: 2 ok, 1 failed, 0 not run" in err


# --- the input parser, directly ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("a\nb\n", "auto", [("1", "a"), ("2", "b")]),
        ("\ufeffa\r\n\r\n  \nb", "auto", [("1", "a"), ("4", "b")]),
        ("  keep  spaces  \n", "auto", [("1", "  keep  spaces  ")]),
        ("hello\n{not json}\n", "auto", [("1", "hello"), ("2", "{not json}")]),
        ('{"x": 1} is a prompt\n', "text", [("1", '{"x": 1} is a prompt')]),
        ('\n  {"message": "m"}\n', "auto", [("2", "m")]),
        ('{"id": 3, "message": "m"}\n{"message": "n"}\n', "jsonl", [(3, "m"), ("2", "n")]),
    ],
)
def test_parse_input(text: str, fmt: str, expected: list[tuple[object, str]]) -> None:
    parsed = parse_input(text, fmt=fmt)  # type: ignore[arg-type]
    assert [(it.id, it.message) for it in parsed.items] == expected
    assert [it.index for it in parsed.items] == list(range(len(expected)))


def test_parse_input_caps_the_problem_list() -> None:
    with pytest.raises(BatchInputError) as info:
        parse_input("{}\n" * 30, label="in")
    assert "30 problems" in info.value.message
    assert len(info.value.problems) == 21 and info.value.problems[-1] == "... and 10 more"
    assert info.value.exit_code == 2
