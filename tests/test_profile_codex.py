"""The codex wrapper on streams recorded from the real Codex CLI.

The recordings in tests/fake_clis/codex/ were captured by the end-to-end
suite (e2e/tests/test_codex.py, E2E_CAPTURE=1) from Codex 0.171.0 talking to
a fake OpenAI Responses API; tests/fake_clis/fake_cli.py replays them. Each
test runs the bundled profile through the bridge, as a user would.
(exit.jsonl alone is made up: a crash with a message on stderr.)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentproc.wire import Attachment
from bridge.profile import load_profile
from bridge.runner import run_turn
from bridge.turn import TurnResult

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "bridge" / "profiles" / "codex"
FAKES = Path(__file__).parent / "fake_clis"
#: The thread id the recordings were made stable with.
THREAD = "eb13f1a7-cbbe-565d-87a3-c0f283200dd4"

#: The launcher: fake_cli.py, with three additions. A resumed run replays
#: $FAKE_CODEX_ON_RESUME when set; the variables the wrapper gave Codex are
#: logged; with $FAKE_CODEX_HANG the replay then waits, as Codex does when it
#: waits for the network.
LAUNCHER = """\
import json, os, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, {fakes!r})
resume = os.environ.get("FAKE_CODEX_ON_RESUME")
if resume and "resume" in sys.argv[1:]:
    os.environ["FAKE_CLI_SCENARIO"] = resume
keys = ("CODEX_API_KEY", "OPENAI_API_KEY")
with open(os.environ["FAKE_CLI_LOG"] + ".env", "a") as fh:
    fh.write(json.dumps({{k: os.environ.get(k) for k in keys}}) + "\\n")
import fake_cli
replay = fake_cli.replay


def hanging(*args):
    code = replay(*args)
    if os.environ.get("FAKE_CODEX_HANG"):
        time.sleep(30)
    return code


fake_cli.replay = hanging
fake_cli.main("codex")
"""


class FakeCodex:
    """A ``codex`` on PATH that replays a recording and logs how it was called."""

    def __init__(self, folder: Path) -> None:
        self.home = folder
        self.bin = folder / "bin"
        self.bin.mkdir()
        self.log = folder / "fake-cli.log"
        launcher = self.bin / "codex"
        launcher.write_text(f"#!{sys.executable}\n" + LAUNCHER.format(fakes=str(FAKES)))
        launcher.chmod(0o755)

    def entries(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def keys(self) -> list[dict[str, str | None]]:
        path = Path(f"{self.log}.env")
        return [json.loads(line) for line in path.read_text().splitlines()]

    def turn(
        self,
        scenario: str,
        message: str = "hi",
        *,
        session_id: str = "",
        on_resume: str = "",
        env: dict[str, str] | None = None,
        environ: dict[str, str] | None = None,
        attachments: tuple[Attachment, ...] = (),
    ) -> TurnResult:
        profile = load_profile(PROFILE)
        bridge_env = {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        bridge_env["HOME"] = str(self.home)
        bridge_env.update(environ or {})
        extra = {"FAKE_CLI_SCENARIO": scenario, "FAKE_CLI_LOG": str(self.log), **(env or {})}
        if on_resume:
            extra["FAKE_CODEX_ON_RESUME"] = on_resume
        partials: list[str] = []

        async def go() -> TurnResult:
            return await run_turn(
                profile,
                message,
                session_id=session_id,
                on_partial=partials.append,
                attachments=attachments,
                cwd=str(self.home),
                env=extra,
                environ=bridge_env,
                timeout=30,
            )

        result = anyio.run(go)
        assert result.partials == partials
        return result


@pytest.fixture
def codex(tmp_path: Path) -> FakeCodex:
    return FakeCodex(tmp_path)


def recorded(scenario: str) -> list[dict[str, Any]]:
    text = (FAKES / "codex" / f"{scenario}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_plain(text: str) -> None:
    assert "\x1b" not in text and "Traceback" not in text and '{"' not in text, text


# --- how Codex is started ------------------------------------------------------------------


def test_codex_runs_in_any_folder_and_reads_the_prompt_from_stdin(codex: FakeCodex) -> None:
    result = codex.turn("first", "what is here?")
    assert result.error is None, result.error
    entry = codex.entries()[0]
    assert entry["argv"][:3] == ["exec", "--json", "--skip-git-repo-check"]
    assert entry["argv"][-1] == "-" and entry["stdin"] == "what is here?"
    assert not any(a.startswith("-c") for a in entry["argv"])


def test_the_usual_openai_variables_reach_codex(codex: FakeCodex) -> None:
    environ = {"OPENAI_BASE_URL": "https://proxy.example.com/v1", "OPENAI_API_KEY": "sk-mine"}
    result = codex.turn("first", environ=environ)
    assert result.error is None, result.error
    argv = codex.entries()[0]["argv"]
    assert argv[argv.index("-c") + 1] == 'openai_base_url="https://proxy.example.com/v1"'
    assert codex.keys() == [{"CODEX_API_KEY": "sk-mine", "OPENAI_API_KEY": "sk-mine"}]
    # A CODEX_API_KEY of its own is left alone.
    codex.turn("first", environ={"OPENAI_API_KEY": "sk-mine", "CODEX_API_KEY": "sk-codex"})
    assert codex.keys()[-1]["CODEX_API_KEY"] == "sk-codex"


def test_an_image_without_text_gets_a_prompt(codex: FakeCodex, tmp_path: Path) -> None:
    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    result = codex.turn("first", "", attachments=(Attachment("image", png.as_uri()),))
    assert result.error is None, result.error
    entry = codex.entries()[0]
    assert any(a.startswith("--image=") and a.endswith("-dot.png") for a in entry["argv"])
    assert entry["stdin"].startswith("The user sent the attached image(s) without any text.")


# --- sessions --------------------------------------------------------------------------------


def test_the_thread_is_named_at_once(codex: FakeCodex) -> None:
    result = codex.turn("error")
    assert result.exit_code == 1
    assert result.session_id == THREAD  # Codex keeps a failed thread; it can be resumed


def test_a_thread_codex_has_no_record_of_starts_afresh_with_a_note(codex: FakeCodex) -> None:
    assert "no rollout found" in recorded("gone")[-2]["text"]
    result = codex.turn("first", "hello", session_id="an-old-thread", on_resume="gone")
    assert result.error is None, result.error
    note, _, rest = result.reply.partition("\n\n")
    assert "session an-old-thread could not be resumed here" in note
    assert rest == "There is a README.md and a src folder."
    assert result.session_id == THREAD
    failed, fresh = codex.entries()
    assert failed["argv"][-4:] == ["resume", "--", "an-old-thread", "-"]
    assert "resume" not in fresh["argv"]
    assert fresh["stdin"] == "hello"


# --- errors, retries and reconnects --------------------------------------------------------


def test_a_refused_key_reads_as_words_with_the_reconnect_as_a_note(codex: FakeCodex) -> None:
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
    codex: FakeCodex, scenario: str, words: str
) -> None:
    result = codex.turn(scenario)
    assert result.exit_code == 1
    assert result.error is not None
    assert words in result.error, result.error
    assert "\nWhat to do: " in result.error
    assert_plain(result.error)


def test_a_reconnect_codex_gets_past_is_a_note_not_part_of_the_reply(codex: FakeCodex) -> None:
    result = codex.turn("recovered")
    assert result.error is None, result.error
    assert result.reply == "The second try is whole."
    assert result.partials[0].startswith("(reconnecting, attempt 1 of 1: stream disconnected")
    assert result.partials[1:] == ["\n\n", "The second try is whole."]


def test_codex_waiting_for_the_network_is_stopped_after_the_stall_limit(
    codex: FakeCodex,
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


def test_an_option_codex_does_not_have_is_named_from_its_error_line(codex: FakeCodex) -> None:
    result = codex.turn("usage")
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith(
        "Codex did not accept its options: unexpected argument '--full-auto' found"
    )
    assert "--sandbox workspace-write" in result.error


# --- the sandbox -----------------------------------------------------------------------------


def test_a_command_the_read_only_sandbox_stopped_is_said(codex: FakeCodex) -> None:
    result = codex.turn("sandbox")
    assert result.error is None, result.error
    answer, note = result.reply.split("\n\n")
    assert answer == "The file system is read-only."
    assert note == (
        "(Codex's sandbox is read-only here, so it could not run `/bin/bash -lc 'sleep 1; "
        "touch created.txt'`. To let Codex edit files in this folder, set CODEX_ARGS=\"--sandbox "
        'workspace-write".)'
    )


def test_the_error_line_codex_prints_is_the_message(codex: FakeCodex) -> None:
    # (With RUST_BACKTRACE set, a stack backtrace follows it: the end of stderr
    # would say nothing.)
    result = codex.turn("badconfig")
    assert result.exit_code == 1
    assert result.error == "Codex exited with code 1: Model provider `nope` not found"
