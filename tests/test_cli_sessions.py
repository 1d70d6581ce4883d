"""`agentproc sessions`, run as a user would: the real command on real SQLite files.

The conversations are written with the store's own API (as a bridge would
write them), then read and changed through the command. Reads must never
create or change anything; every failure is a message and an exit status,
never a traceback (``helpers.cli`` checks stderr for one).
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from helpers import AGENTPROC, Run, cli, run_in_pty
from store_contract import dead_owner, outcome
from test_store_sqlite import snapshot, tables, v1_file

from bridge.store import rules
from bridge.store.owners import new_owner
from bridge.store.records import (
    CONVERSATION_CANCEL,
    CONVERSATION_RESET,
    STATUS_ABANDONED,
    STATUS_ERROR,
    TURN_PARTIAL,
    ConversationKey,
    NewMessage,
    Route,
)
from bridge.store.sqlite import SQLiteStore, open_store
from bridge.store.sqlite_schema import carried_over_id

T = TypeVar("T")

LEASE = 600.0
ECHO = Route("bundled:echo", "/some/dir", "echo")
#: Another profile with the same name in another folder: the same label as ECHO's.
OTHER_ECHO = Route("/home/me/echo", "/other dir", "echo")
#: A key and a profile name holding every character a label's syntax uses.
ODD = Route("bundled:odd", "/x", 'team:bot@v2 "q"')
ODD_KEY = ConversationKey("slack", "a@b:c d's", ODD)

LIST_KEYS = [
    "id",
    "label",
    "channel",
    "key",
    "profile",
    "profile_ref",
    "cwd",
    "session_id",
    "session_name",
    "turn_count",
    "last_status",
    "running_turn",
    "created_at",
    "updated_at",
]


def store_call(data: Path, work: Callable[[SQLiteStore], Awaitable[T]]) -> T:
    """Run ``work`` on the store in ``data``, opened for writing, as a bridge would."""

    async def go() -> T:
        async with open_store(data) as store:
            return await work(store)

    return anyio.run(go)


async def turn(
    store: SQLiteStore,
    conv_id: str,
    owner: str,
    text: str,
    *,
    user: str = "alice",
    finish: bool = True,
    **fields: Any,
) -> int:
    """One turn, as the dispatcher writes it: message, claim, take, start and
    (with ``finish``) complete and release. Returns its number."""
    await store.add_message(conv_id, NewMessage(text, from_user=user))
    claim = await store.claim(conv_id, owner, lease_secs=LEASE)
    assert claim is not None
    conv, _ = await store.take(conv_id, owner, [e.id for e in claim.pending], text=text)
    number = conv.running_turn
    await store.start(conv_id, owner, number, conv.session_id)
    if finish:
        result = outcome(**fields)
        await store.complete(
            conv_id,
            owner,
            number,
            result,
            captured_session=result["session_id"] or None,
            epoch=conv.reset_epoch,
        )
        await store.release(conv_id, owner)
    return number


@dataclass
class Fixture:
    data: Path
    echo: str  # terminal:a@echo in /some/dir: two completed turns
    other: str  # terminal:a@echo in "/other dir": no turns
    odd: str  # slack:a@b:c d's@team:bot@v2 "q": one turn done, one running

    def run(self, *args: str, **kwargs: Any) -> Run:
        return cli("sessions", *args, "--data-dir", self.data, **kwargs)


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    data = tmp_path / "data"
    owner = new_owner()  # this process: alive, so the running turn's lease is live

    async def build(store: SQLiteStore) -> Fixture:
        echo = await store.open(ConversationKey("terminal", "a", ECHO))
        other = await store.open(ConversationKey("terminal", "a", OTHER_ECHO))
        odd = await store.open(ODD_KEY)
        await turn(store, echo.id, owner, "hello", reply="You said: hello", session_id="s-1")
        await turn(
            store,
            echo.id,
            owner,
            "boom\nsecond line",
            status=STATUS_ERROR,
            error="it broke",
            hint="try again later",
            exit_code=3,
        )
        await turn(store, odd.id, owner, "first", user="bob", reply="first reply")
        running = await turn(store, odd.id, owner, "slow one", user="bob", finish=False)
        await store.append(odd.id, owner, running, TURN_PARTIAL, {"text": "thinking", "offset": 0})
        return Fixture(data, echo.id, other.id, odd.id)

    return store_call(data, build)


def rows(run: Run) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run.out.splitlines()]


# --- list -------------------------------------------------------------------------------------


def test_list_prints_a_table_of_every_conversation(fx: Fixture) -> None:
    run = fx.run("list")
    assert run.code == 0, run.err
    head, *lines = run.out.splitlines()
    assert head.split() == ["ID", "LABEL", "FOLDER", "SESSION", "TURNS", "LAST", "ACTIVE"]
    by_id = {line.split()[0]: line for line in lines}
    assert set(by_id) == {fx.echo, fx.other, fx.odd}
    assert "terminal:a@echo" in by_id[fx.echo] and "/some/dir" in by_id[fx.echo]
    assert "s-1" in by_id[fx.echo] and " error " in by_id[fx.echo]
    assert "/other dir" in by_id[fx.other]
    assert 'slack:a@b:c d\'s@team:bot@v2 "q"' in by_id[fx.odd]
    assert " running " in by_id[fx.odd]


def test_list_json_has_stable_keys(fx: Fixture) -> None:
    run = fx.run("list", "--json")
    assert run.code == 0, run.err
    found = {r["id"]: r for r in rows(run)}
    assert all(list(r) == LIST_KEYS for r in found.values())
    echo, odd = found[fx.echo], found[fx.odd]
    assert echo["label"] == "terminal:a@echo"
    assert (echo["channel"], echo["key"], echo["profile"]) == ("terminal", "a", "echo")
    assert (echo["profile_ref"], echo["cwd"]) == ("bundled:echo", "/some/dir")
    assert (echo["session_id"], echo["session_name"]) == ("s-1", "default")
    assert (echo["turn_count"], echo["last_status"], echo["running_turn"]) == (2, "error", 0)
    assert echo["created_at"] <= echo["updated_at"]
    assert (odd["key"], odd["profile"], odd["running_turn"]) == ("a@b:c d's", ODD.name, 2)


def test_list_filters_by_channel_and_profile_name(fx: Fixture) -> None:
    assert [r["id"] for r in rows(fx.run("list", "--json", "--channel", "slack"))] == [fx.odd]
    echoes = {r["id"] for r in rows(fx.run("list", "--json", "--profile", "echo"))}
    assert echoes == {fx.echo, fx.other}
    assert rows(fx.run("list", "--json", "--profile", ODD.name))[0]["id"] == fx.odd
    # The profile's reference is not its name.
    run = fx.run("list", "--profile", "bundled:echo", "--channel", "terminal")
    assert (run.code, run.out) == (0, "")
    assert "no conversations with channel 'terminal' and profile 'bundled:echo' in" in run.err


def test_list_of_a_missing_folder_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "data"
    env = {**os.environ, "AGENTPROC_DATA_DIR": str(missing)}
    run = cli("sessions", "list", env=env)
    assert (run.code, run.out) == (0, "")
    assert f"no conversations in {missing / 'sessions.db'} (no store there yet)" in run.err
    assert cli("sessions", "list", "--json", env=env).out == ""
    show = cli("sessions", "show", "terminal:a@echo", env=env)
    assert show.code == 1 and "no conversation" in show.err
    prune = cli("sessions", "prune", "--older-than", "0s", "--dry-run", env=env)
    assert prune.code == 0 and "nothing to prune" in prune.out
    # A mistyped reference writes nothing either: it is looked up first.
    assert cli("sessions", "reset", "terminal:a@echo", env=env).code == 1
    assert cli("sessions", "delete", "terminal:a@echo", "--yes", env=env).code == 1
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("wal", [True, False])
def test_reads_show_an_old_release_file_without_changing_it(tmp_path: Path, wal: bool) -> None:
    data = tmp_path / "data"
    path = v1_file(data / "sessions.db", wal=wal)
    before = snapshot(data)
    run = cli("sessions", "list", "--data-dir", data)
    assert run.code == 0, run.err
    lines = run.out.splitlines()[1:]
    assert len(lines) == 4
    assert all(line.split()[2] == "?" for line in lines)  # the folder was not recorded
    echo = carried_over_id("terminal", "default", "echo")
    listed = {r["id"]: r for r in rows(cli("sessions", "list", "--json", "--data-dir", data))}
    assert listed[echo]["cwd"] == "" and listed[echo]["session_id"] == "s-echo-2"
    assert listed[carried_over_id("slack", "a@b:c@d", "team:bot@v2")]["label"] == (
        "slack:a@b:c@d@team:bot@v2"
    )
    show = cli("sessions", "show", "terminal:default@echo", "--data-dir", data)
    assert show.code == 0, show.err
    assert f"id:            {echo}" in show.out
    assert "folder:        ? (carried over" in show.out
    assert "  alice: hello" in show.out and "  echo: You said: hello" in show.out
    assert "cancelled  exit 130" in show.out
    shown = json.loads(cli("sessions", "show", echo, "--json", "--data-dir", data).out)
    assert [t["turn"] for t in shown["turns"]] == [1, 2, 3]
    assert shown["state"] == {"mode": "terse", "n": [1, 2]}
    assert snapshot(data) == before, "no byte, time or file changed"
    assert tables(path) == ["conversations", "schema_version", "transcript"]


# --- show -------------------------------------------------------------------------------------


def test_show_prints_the_conversation_and_its_turns(fx: Fixture) -> None:
    run = fx.run("show", fx.echo)
    assert run.code == 0, run.err
    out = run.out
    for line in [
        f"id:            {fx.echo}",
        "label:         terminal:a@echo",
        "profile:       echo (bundled:echo)",
        "folder:        /some/dir",
        "agent session: s-1",
        "turns:         2",
        "last status:   error",
    ]:
        assert line in out.splitlines(), line
    first, second = out.split("\n#1 ")[1].split("\n#2 ")
    assert "  ok  exit 0  12 ms" in first
    assert "  alice: hello\n  echo: You said: hello\n" in first
    assert "  error  exit 3  12 ms" in second
    assert "  alice: boom\n    second line\n" in second
    assert "  error: it broke\n  hint: try again later\n" in second


def test_show_a_running_turn(fx: Fixture) -> None:
    run = fx.run("show", ODD_KEY.label)
    assert run.code == 0, run.err
    assert "last status:   running" in run.out
    done, running = run.out.split("\n#1 ")[1].split("\n#2 ")
    assert "  bob: first\n" in done and f"  {ODD.name}: first reply" in done
    assert "  running\n" in running
    assert "  bob: slow one\n" in running and f"  {ODD.name} (so far): thinking\n" in running
    data = json.loads(fx.run("show", fx.odd, "--json").out)
    assert [t["turn"] for t in data["turns"]] == [1]
    assert data["running"] == {
        "turn": 2,
        "message": "slow one",
        "attachments": [],
        "from_users": ["bob"],
        "session_id": "",
        "started_at": data["running"]["started_at"],
        "partial": "thinking",
        "cancel_requested": False,
        "process_alive": True,
    }


def test_show_json_is_one_object(fx: Fixture) -> None:
    run = fx.run("show", fx.echo, "--json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert list(data) == [*LIST_KEYS, "state", "turns", "running"]
    assert (data["id"], data["state"], data["running"]) == (fx.echo, None, None)
    first, second = data["turns"]
    assert (first["message"], first["from_users"], first["status"]) == ("hello", ["alice"], "ok")
    assert (first["reply"], first["error"], first["session_id"]) == ("You said: hello", None, "s-1")
    assert (second["status"], second["exit_code"]) == ("error", 3)
    assert (second["error"], second["hint"]) == ("it broke", "try again later")


def test_show_limit(fx: Fixture) -> None:
    run = fx.run("show", fx.echo, "--limit", "1")
    assert run.code == 0, run.err
    assert "\n#2 " in run.out and "\n#1 " not in run.out
    assert "(the last 1 turn of 2; --limit shows more)" in run.out
    assert len(json.loads(fx.run("show", fx.echo, "--limit", "1", "--json").out)["turns"]) == 1


def test_control_characters_are_shown_escaped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = ConversationKey("tg", "line\nbreak", ECHO)

    async def build(store: SQLiteStore) -> str:
        conv = await store.open(key)
        reply = "\x1b]0;title\x07\x1b[31mred\x1b[0m\ttabbed\nnext"
        await turn(store, conv.id, new_owner(), "hi", reply=reply)
        return conv.id

    conv_id = store_call(data, build)
    listed = cli("sessions", "list", "--data-dir", data)
    assert listed.out.splitlines()[1].startswith(f"{conv_id}  tg:line\\nbreak@echo  ")
    shown = cli("sessions", "show", conv_id, "--data-dir", data).out
    assert "\x1b" not in shown and "\x07" not in shown
    assert "  echo: \\x1b]0;title\\x07\\x1b[31mred\\x1b[0m    tabbed\n    next\n" in shown
    # The label, compared whole, still names it.
    assert json.loads(cli("sessions", "show", key.label, "--json", "--data-dir", data).out)[
        "turns"
    ][0]["reply"].startswith("\x1b]0;title")


# --- naming a conversation --------------------------------------------------------------------


def test_a_conversation_is_named_by_id_prefix_or_label(fx: Fixture) -> None:
    for ref in (fx.odd, fx.odd[:6], fx.odd[:12], ODD_KEY.label):
        run = fx.run("show", ref, "--json")
        assert run.code == 0, (ref, run.err)
        assert json.loads(run.out)["id"] == fx.odd


def test_a_label_two_routes_share_is_ambiguous(fx: Fixture) -> None:
    for command in ("show", "reset", "cancel", "delete"):
        run = fx.run(command, "terminal:a@echo", *(["--yes"] if command == "delete" else []))
        assert run.code == 2, (command, run.err)
        assert "'terminal:a@echo' names 2 conversations" in run.err
        assert f"  {fx.echo}  terminal:a@echo  /some/dir" in run.err
        assert f"  {fx.other}  terminal:a@echo  /other dir" in run.err
        assert f"hint: name one by its id: agentproc sessions {command} " in run.err
    assert len(rows(fx.run("list", "--json"))) == 3  # nothing was deleted


@pytest.mark.parametrize("command", ["show", "reset", "cancel", "delete"])
@pytest.mark.parametrize("ref", ["terminal:nobody@echo", "cffffffffff", "c0", "", "a b\n'\"@:"])
def test_an_unknown_reference(fx: Fixture, command: str, ref: str) -> None:
    before = snapshot(fx.data)
    run = cli("sessions", command, "--data-dir", fx.data, "--", ref)
    assert run.code == 1, run.err
    assert f"no conversation with the id, id start or label {ref!r} in {fx.data}" in run.err
    assert "hint: `agentproc sessions list` shows the ids and labels" in run.err
    if ref == "c0":
        assert "at least 6 characters" in run.err
    assert snapshot(fx.data) == before


# --- writes -----------------------------------------------------------------------------------


def test_reset_forgets_the_agent_session(fx: Fixture) -> None:
    run = fx.run("reset", fx.echo[:8])
    assert run.code == 0, run.err
    assert run.out == (
        f"reset: terminal:a@echo ({fx.echo}) starts a fresh agent session on its next turn\n"
    )

    async def check(store: SQLiteStore) -> None:
        conv = await store.get(fx.echo)
        assert conv is not None and (conv.session_id, conv.reset_epoch) == ("", 1)
        last = (await store.read(conv.id))[-1]
        assert last.type == CONVERSATION_RESET and last.data["by"] == os.environ.get("USER", "")

    store_call(fx.data, check)
    assert rows(fx.run("list", "--json", "--channel", "terminal"))[0]["session_id"] == ""


def test_cancel_asks_the_running_process_to_stop(fx: Fixture) -> None:
    store_call(fx.data, lambda s: s.add_message(fx.odd, NewMessage("waiting", from_user="bob")))
    run = fx.run("cancel", ODD_KEY.label)
    assert run.code == 0, run.err
    assert f"cancel: asked turn 2 of {ODD_KEY.label} ({fx.odd}) to stop" in run.out
    assert "stops the agent when it sees the request" in run.out
    assert "dropped 1 waiting message\n" in run.out

    async def check(store: SQLiteStore) -> None:
        last = (await store.read(fx.odd))[-1]
        assert (last.type, last.turn, len(last.data["dropped"])) == (CONVERSATION_CANCEL, 2, 1)
        conv = await store.get(fx.odd)
        assert conv is not None and conv.running_turn == 2  # its process closes it

    store_call(fx.data, check)
    assert "  running, cancel requested" in fx.run("show", fx.odd).out


def test_cancel_closes_a_turn_whose_process_is_gone(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def build(store: SQLiteStore) -> str:
        conv = await store.open(ConversationKey("terminal", "a", ECHO))
        await turn(store, conv.id, dead_owner(), "lost", finish=False)
        return conv.id

    conv_id = store_call(data, build)
    listed = cli("sessions", "list", "--data-dir", data)
    assert " abandoned " in listed.out  # seen so before anything is written
    shown = cli("sessions", "show", conv_id, "--data-dir", data)
    assert f"abandoned: the process running it is gone (`agentproc sessions cancel {conv_id}`" in (
        shown.out
    )
    run = cli("sessions", "cancel", conv_id, "--data-dir", data)
    assert run.code == 0, run.err
    assert "had no process running it any more: closed it as abandoned" in run.out
    data_out = json.loads(cli("sessions", "show", conv_id, "--json", "--data-dir", data).out)
    assert (data_out["running_turn"], data_out["last_status"]) == (0, STATUS_ABANDONED)
    assert data_out["turns"][0]["hint"] == rules.ABANDONED_HINT
    assert (
        "  hint: it was not run again" in cli("sessions", "show", conv_id, "--data-dir", data).out
    )


def test_cancel_with_nothing_running(fx: Fixture) -> None:
    run = fx.run("cancel", fx.echo)
    assert (run.code, run.out) == (
        0,
        f"cancel: no turn is running in terminal:a@echo ({fx.echo})\n",
    )


def test_delete_needs_yes_without_a_terminal(fx: Fixture) -> None:
    run = fx.run("delete", fx.echo)
    assert run.code == 2
    assert "not deleting anything: delete asks for confirmation and stdin is not a terminal" in (
        run.err
    )
    assert f"hint: add --yes: agentproc sessions delete {fx.echo} --yes" in run.err
    run = fx.run("delete", fx.echo, "--yes")
    assert (run.code, run.out) == (0, f"deleted terminal:a@echo ({fx.echo})\n")
    assert {r["id"] for r in rows(fx.run("list", "--json"))} == {fx.other, fx.odd}
    assert store_call(fx.data, lambda s: s.read(fx.echo)) == []


def test_delete_refuses_a_running_conversation(fx: Fixture) -> None:
    run = fx.run("delete", fx.odd, "--yes")
    assert run.code == 1
    assert "turn 2 of" in run.err and "is running; nothing was deleted" in run.err
    assert f"agentproc sessions cancel {fx.odd}" in run.err
    assert len(rows(fx.run("list", "--json"))) == 3


@pytest.mark.parametrize(("answer", "kept"), [(b"n\n", True), (b"y\n", False)])
def test_delete_asks_at_a_terminal(fx: Fixture, answer: bytes, kept: bool) -> None:
    argv = [AGENTPROC, "sessions", "delete", fx.echo, "--data-dir", str(fx.data)]
    out = run_in_pty(argv, answer=answer)
    assert "Delete this conversation with its transcript?" in out
    assert ("nothing deleted" in out) is kept
    assert (fx.echo in {r["id"] for r in rows(fx.run("list", "--json"))}) is kept


def test_prune_deletes_idle_conversations_but_not_a_running_one(fx: Fixture) -> None:
    dry = fx.run("prune", "--older-than", "0s", "--dry-run")
    assert dry.code == 0, dry.err
    assert fx.echo in dry.out and fx.other in dry.out and fx.odd not in dry.out
    assert "would prune 2 conversations (dry run: nothing deleted)" in dry.out
    assert len(rows(fx.run("list", "--json"))) == 3
    run = fx.run("prune", "--older-than", "0s", "--yes")
    assert (run.code, run.out) == (0, "pruned 2 conversations\n")
    assert [r["id"] for r in rows(fx.run("list", "--json"))] == [fx.odd]


def test_prune_without_a_terminal_needs_yes(fx: Fixture) -> None:
    run = fx.run("prune", "--older-than", "0s")
    assert run.code == 2
    assert "prune asks for confirmation and stdin is not a terminal" in run.err
    assert "--dry-run" in run.err and "--older-than 0s --yes" in run.err
    assert len(rows(fx.run("list", "--json"))) == 3


# --- garbage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["show", "x", "--limit", "0"], "0 is not in the range x>=1"),
        (["show", "x", "--limit", "-3"], "-3 is not in the range x>=1"),
        (["show", "x", "--limit", "many"], "'many' is not a valid integer"),
        (["show", "x", "--limit", ""], "'' is not a valid integer"),
        (["prune", "--older-than", "soon"], "'soon' is not a duration like 30d"),
        (["prune", "--older-than", "30", "--yes"], "'30' has no unit: add one, like 30d"),
        (["prune", "--older-than", "3y", "--yes"], "unknown unit 'y'"),
        (["prune", "--older-than", "", "--yes"], "'' is not a duration"),
        (["prune"], "Missing option '--older-than'"),
        (["show"], "Missing argument 'CONVERSATION'"),
        (["list", "--data-dir", ""], "an empty value names no folder"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, args: list[str], words: str) -> None:
    data = tmp_path / "data"
    run = cli("sessions", *args, *([] if "--data-dir" in args else ["--data-dir", data]))
    assert run.code == 2, run.err
    assert words in run.err
    assert not data.exists()


@pytest.mark.parametrize(
    "args",
    [["list"], ["show", "x"], ["reset", "terminal:a@echo"], ["prune", "--older-than", "1d", "-y"]],
)
def test_a_data_folder_that_is_a_file(tmp_path: Path, args: list[str]) -> None:
    afile = tmp_path / "data"
    afile.write_text("not a folder")
    run = cli("sessions", *args, env={**os.environ, "AGENTPROC_DATA_DIR": str(afile)})
    assert run.code == 1
    assert f"error: the data folder {afile} is a file, not a folder" in run.err
    assert "hint: give --data-dir or AGENTPROC_DATA_DIR a folder" in run.err
    run = cli("sessions", *args, "--data-dir", afile)
    assert run.code == 2 and "is a file" in run.err
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "--json"],
        ["show", "terminal:a@echo"],
        ["reset", "terminal:a@echo"],
        ["cancel", "terminal:a@echo"],
        ["delete", "terminal:a@echo", "--yes"],
        ["prune", "--older-than", "0s", "--yes"],
    ],
)
def test_a_store_that_is_not_a_database_is_refused_untouched(
    tmp_path: Path, args: list[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "sessions.db").write_text("this is not sqlite")
    before = snapshot(data)
    run = cli("sessions", *args, "--data-dir", data)
    assert run.code == 1
    assert f"error: {data / 'sessions.db'} is not a SQLite database" in run.err
    assert "hint: move it aside" in run.err
    assert snapshot(data) == before


def _ordinary_user() -> None:
    """In the child, before it runs: drop the capabilities that let root read
    and write whatever the permissions say (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH, CAP_FOWNER), so root is refused like anyone else."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for cap in (1, 2, 3):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture
def read_only_store(fx: Fixture) -> Iterator[Fixture]:
    """The fixture's store with the file 0444 and its folder 0555."""
    if os.geteuid() == 0 and not sys.platform.startswith("linux"):
        pytest.skip("root ignores file permissions, and dropping that needs Linux")
    # The running turn's lease would keep prune from touching it; end it.
    store_call(fx.data, lambda s: s.delete(fx.odd))
    path = fx.data / "sessions.db"
    path.chmod(0o444)
    fx.data.chmod(0o555)
    try:
        yield fx
    finally:
        fx.data.chmod(0o755)
        path.chmod(0o644)


def as_user(fx: Fixture, *args: str) -> Run:
    preexec = _ordinary_user if os.geteuid() == 0 else None
    return cli("sessions", *args, "--data-dir", fx.data, preexec_fn=preexec)


def test_a_read_only_store_is_read_but_not_written(read_only_store: Fixture) -> None:
    fx = read_only_store
    before = snapshot(fx.data)
    assert stat.S_IMODE(fx.data.stat().st_mode) == 0o555
    listed = as_user(fx, "list", "--json")
    assert listed.code == 0, listed.err
    assert {r["id"] for r in rows(listed)} == {fx.echo, fx.other}
    shown = as_user(fx, "show", fx.echo)
    assert shown.code == 0 and "  echo: You said: hello" in shown.out
    for args in (
        ["reset", fx.echo],
        ["cancel", fx.echo],
        ["delete", fx.echo, "--yes"],
        ["prune", "--older-than", "0s", "--yes"],
    ):
        run = as_user(fx, *args)
        assert run.code == 1, (args, run.out, run.err)
        assert f"error: cannot write to the session store {fx.data / 'sessions.db'}" in run.err
        assert "hint: check the permissions of the file and its folder" in run.err
    assert snapshot(fx.data) == before
    assert len(rows(as_user(fx, "list", "--json"))) == 2


def test_help_lists_every_command() -> None:
    run = cli("sessions", "--help")
    assert run.code == 0
    for command in ("list", "show", "reset", "cancel", "delete", "prune"):
        assert f"  {command} " in run.out, command
    assert "list and show only read" in run.out
