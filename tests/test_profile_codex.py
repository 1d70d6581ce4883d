"""The codex wrapper on streams recorded from the real Codex CLI.

The recordings in tests/fake_clis/codex/ were captured by the end-to-end
suite (e2e/tests/test_codex.py, E2E_CAPTURE=1) from Codex 0.171.0 talking to
a fake OpenAI Responses API; tests/fake_clis/fake_cli.py replays them. Each
test runs the bundled profile through the bridge, as a user would.
(exit.jsonl alone is made up: a crash with a message on stderr.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from profile_kit import RECORDED_SESSION as THREAD
from profile_kit import Fakes, assert_plain, check_a_lost_session_starts_afresh, recorded

from agentproc.wire import Attachment

#: What the fake codex does besides replaying: it logs the keys the wrapper
#: gave Codex, and with $FAKE_CODEX_HANG the replay then waits, as Codex does
#: when it waits for the network.
HANG = """\
import time
import fake_cli
replay = fake_cli.replay


def hanging(*args):
    code = replay(*args)
    if os.environ.get("FAKE_CODEX_HANG"):
        time.sleep(30)
    return code


fake_cli.replay = hanging
"""


@pytest.fixture
def codex(tmp_path: Path) -> Fakes:
    """A ``codex`` on PATH that replays a recording and logs how it was called."""
    keys = ("CODEX_API_KEY", "OPENAI_API_KEY")
    return Fakes.make(tmp_path, ("codex",), profile="codex", logged=keys, prelude=HANG)


# --- how Codex is started ------------------------------------------------------------------


def test_codex_runs_in_any_folder_and_reads_the_prompt_from_stdin(codex: Fakes) -> None:
    result = codex.turn("first", "what is here?")
    assert result.error is None, result.error
    entry = codex.entries()[0]
    assert entry["argv"][:3] == ["exec", "--json", "--skip-git-repo-check"]
    assert entry["argv"][-1] == "-" and entry["stdin"] == "what is here?"
    assert not any(a.startswith("-c") for a in entry["argv"])


def test_the_usual_openai_variables_reach_codex(codex: Fakes) -> None:
    environ = {"OPENAI_BASE_URL": "https://proxy.example.com/v1", "OPENAI_API_KEY": "sk-mine"}
    result = codex.turn("first", environ=environ)
    assert result.error is None, result.error
    argv = codex.entries()[0]["argv"]
    assert argv[argv.index("-c") + 1] == 'openai_base_url="https://proxy.example.com/v1"'
    assert codex.logged() == [{"CODEX_API_KEY": "sk-mine", "OPENAI_API_KEY": "sk-mine"}]
    # A CODEX_API_KEY of its own is left alone.
    codex.turn("first", environ={"OPENAI_API_KEY": "sk-mine", "CODEX_API_KEY": "sk-codex"})
    assert codex.logged()[-1]["CODEX_API_KEY"] == "sk-codex"


def test_an_image_without_text_gets_a_prompt(codex: Fakes, tmp_path: Path) -> None:
    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    result = codex.turn("first", "", attachments=(Attachment("image", png.as_uri()),))
    assert result.error is None, result.error
    entry = codex.entries()[0]
    assert any(a.startswith("--image=") and a.endswith("-dot.png") for a in entry["argv"])
    assert entry["stdin"].startswith("The user sent the attached image(s) without any text.")


# --- sessions --------------------------------------------------------------------------------


def test_the_thread_is_named_at_once(codex: Fakes) -> None:
    result = codex.turn("error")
    assert result.exit_code == 1
    assert result.session_id == THREAD  # Codex keeps a failed thread; it can be resumed


def test_a_thread_codex_has_no_record_of_starts_afresh_with_a_note(codex: Fakes) -> None:
    assert "no rollout found" in recorded("codex", "gone")[-2]["text"]
    fresh = check_a_lost_session_starts_afresh(codex, on_resume="gone", session="an-old-thread")
    assert "resume" not in fresh["argv"]
    assert fresh["stdin"] == "hello"


# --- errors, retries and reconnects --------------------------------------------------------


def test_a_refused_key_reads_as_words_with_the_reconnect_as_a_note(codex: Fakes) -> None:
    result = codex.turn("error")
    assert result.exit_code == 1
    assert result.partials == [
        "(retrying: the model server answered 401 Unauthorized, attempt 1 of 1)"
    ]
    assert result.reply == ""
    assert result.error is not None
    assert result.error.startswith(
        "Codex got no answer from the model API (HTTP 401 Unauthorized): Incorrect API key provided"
    )
    assert "url:" not in result.error
    assert "What to do: Set a valid API key for the bridge" in result.error
    assert_plain(result.error)


@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        ("retry", "We’re currently experiencing high demand"),
        ("ratelimit", "(HTTP 429 Too Many Requests): no answer after its retries"),
        ("cut", "stream disconnected before completion"),
    ],
)
def test_a_failed_turn_says_what_happened_and_what_to_do(
    codex: Fakes, scenario: str, words: str
) -> None:
    result = codex.turn(scenario)
    assert result.exit_code == 1
    assert result.error is not None
    assert words in result.error, result.error
    assert "\nWhat to do: " in result.error
    assert_plain(result.error)


def test_a_reconnect_codex_gets_past_is_a_note_not_part_of_the_reply(codex: Fakes) -> None:
    result = codex.turn("recovered")
    assert result.error is None, result.error
    assert result.reply == "The second try is whole."
    assert result.partials[0].startswith("(reconnecting, attempt 1 of 1: stream disconnected")
    assert result.partials[1:] == ["\n\n", "The second try is whole."]


def test_codex_waiting_for_the_network_is_stopped_after_the_stall_limit(
    codex: Fakes,
) -> None:
    started = time.monotonic()
    result = codex.turn("offline", env={"FAKE_CODEX_HANG": "1", "CODEX_RECONNECT_STALL_SECS": "1"})
    assert time.monotonic() - started < 15
    assert result.exit_code == 1
    assert result.partials == [
        "(reconnecting: waiting for the network to come back; "
        "Connection failed: error sending request)"
    ]
    assert result.error is not None
    assert result.error.startswith("Codex could not reach the model server for 1 s")
    assert "Connection failed" in result.error and "OPENAI_BASE_URL" in result.error


def test_an_option_codex_does_not_have_is_named_from_its_error_line(codex: Fakes) -> None:
    result = codex.turn("usage")
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith(
        "Codex did not accept its options: unexpected argument '--full-auto' found"
    )
    assert "--sandbox workspace-write" in result.error


# --- the sandbox -----------------------------------------------------------------------------


def test_a_command_the_read_only_sandbox_stopped_is_said(codex: Fakes) -> None:
    result = codex.turn("sandbox")
    assert result.error is None, result.error
    answer, note = result.reply.split("\n\n")
    assert answer == "The file system is read-only."
    assert note == (
        "(Codex's sandbox is read-only here, so it could not run `/bin/bash -lc 'sleep 1; "
        "touch created.txt'`. To let Codex edit files in this folder, set CODEX_ARGS=\"--sandbox "
        'workspace-write".)'
    )


def test_the_error_line_codex_prints_is_the_message(codex: Fakes) -> None:
    # (With RUST_BACKTRACE set, a stack backtrace follows it: the end of stderr
    # would say nothing.)
    result = codex.turn("badconfig")
    assert result.exit_code == 1
    assert result.error == "Codex exited with code 1: Model provider `nope` not found"
