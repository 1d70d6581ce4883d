"""A test kit for the bundled profiles: fake CLIs on PATH, and one turn through the bridge.

A fake CLI is tests/fake_clis/fake_cli.py behind a launcher named like the real
program (``claude``, ``codex``, ...): it replays a stream recorded from the
real CLI (``tests/fake_clis/<cli>/<scenario>.jsonl``) and logs the argv, the
working folder and the stdin it got, so a test checks both directions.
:meth:`Fakes.turn` starts a bundled profile exactly as a user's bridge would
(``run_turn``). :data:`CASES` says what each profile makes of its CLI's
recorded streams. The llm profile, which wraps no CLI, is run against a
chat-completions server on loopback (:class:`Loopback`, :func:`llm_turn`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from agentproc.wire import Attachment, PermissionDecision, PermissionRequest
from bridge.turn.machine import TurnResult
from bridge.turn.profile import load_profile
from bridge.turn.runner import run_turn

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "profiles"
FAKES = Path(__file__).parent / "fake_clis"
#: Every CLI a bundled profile wraps, by the name of its program.
CLIS = ("claude", "codex", "gemini", "opencode", "cursor-agent", "aider")
#: The session id of the streams recorded from Claude Code, Codex and Gemini CLI:
#: the first one a recording test saw, made stable by the e2e suite's recorder.
RECORDED_SESSION = "eb13f1a7-cbbe-565d-87a3-c0f283200dd4"


# --- one turn ------------------------------------------------------------------------------


def turn(profile: str | Path, message: str, **options: Any) -> TurnResult:
    """One turn of ``profile`` (a bundled name, or a path) through the bridge, to its end.

    ``options`` go to ``run_turn`` (a 30 s timeout unless given); what the turn
    streamed must be the result's partials.
    """
    loaded = load_profile(BUNDLED / profile if isinstance(profile, str) else profile)
    options.setdefault("timeout", 30)
    partials: list[str] = []

    async def go() -> TurnResult:
        return await run_turn(loaded, message, on_partial=partials.append, **options)

    result = anyio.run(go)
    assert result.partials == partials
    return result


# --- fake CLIs -----------------------------------------------------------------------------

#: The launcher of a fake CLI. A run that resumes a session (``--resume...``,
#: or codex's ``resume``) replays $FAKE_CLI_ON_RESUME when that is set, so one
#: turn can meet a lost session and then start a fresh one; the variables named
#: in ``logged`` are appended to $FAKE_CLI_LOG.env; ``prelude`` is more Python
#: run before the replay.
LAUNCHER = """\
#!{python}
import json, os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, {fakes!r})
argv = sys.argv[1:]
resume = os.environ.get("FAKE_CLI_ON_RESUME")
if resume and (any(a.startswith("--resume") for a in argv) or "resume" in argv):
    os.environ["FAKE_CLI_SCENARIO"] = resume
logged = {logged!r}
if logged:
    with open(os.environ["FAKE_CLI_LOG"] + ".env", "a") as fh:
        fh.write(json.dumps({{k: os.environ.get(k) for k in logged}}) + "\\n")
{prelude}
import fake_cli
fake_cli.main({cli!r})
"""


@dataclass
class Fakes:
    """Fake CLIs in ``bin`` to put on PATH, the log they write, and ``empty``: a PATH
    without any. The folder above ``bin`` is a turn's HOME and working folder;
    :meth:`turn` runs the bundled ``profile`` unless told another."""

    bin: Path
    log: Path
    empty: Path
    profile: str = ""

    @classmethod
    def make(
        cls,
        folder: Path,
        clis: tuple[str, ...] = CLIS,
        *,
        profile: str = "",
        logged: tuple[str, ...] = (),
        prelude: str = "",
    ) -> Fakes:
        fakes = cls(folder / "bin", folder / "fake-cli.log", folder / "empty", profile)
        fakes.bin.mkdir()
        fakes.empty.mkdir()
        for cli in clis:
            launcher = fakes.bin / cli
            launcher.write_text(
                LAUNCHER.format(
                    python=sys.executable, fakes=str(FAKES), cli=cli, logged=logged, prelude=prelude
                )
            )
            launcher.chmod(0o755)
        return fakes

    @property
    def home(self) -> Path:
        return self.bin.parent

    def entries(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def last(self) -> dict[str, Any]:
        entries = self.entries()
        assert entries, "the fake CLI was not started"
        return entries[-1]

    def logged(self) -> list[dict[str, str | None]]:
        """The ``logged`` variables as each run saw them."""
        path = Path(f"{self.log}.env")
        return [json.loads(line) for line in path.read_text().splitlines()]

    def turn(
        self,
        scenario: str = "first",
        message: str = "hi",
        *,
        profile: str = "",
        on_path: bool = True,
        session_id: str = "",
        on_resume: str = "",
        streaming: bool | None = None,
        attachments: tuple[Attachment, ...] = (),
        on_permission: Callable[[PermissionRequest], PermissionDecision] | None = None,
        env: dict[str, str] | None = None,
        environ: dict[str, str] | None = None,
    ) -> TurnResult:
        """One turn with the fakes replaying ``scenario``, first on PATH (or none at all).

        ``env`` adds to what the profile passes to its wrapper, ``environ`` to
        the bridge's own environment.
        """
        path = f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}" if on_path else str(self.empty)
        bridge_environ = {"PATH": path, "HOME": str(self.home), **(environ or {})}
        extra = {"FAKE_CLI_SCENARIO": scenario, "FAKE_CLI_LOG": str(self.log), **(env or {})}
        if on_resume:
            extra["FAKE_CLI_ON_RESUME"] = on_resume
        return turn(
            profile or self.profile,
            message,
            session_id=session_id,
            attachments=attachments,
            on_permission=on_permission,
            cwd=str(self.home),
            env=extra,
            environ=bridge_environ,
            streaming=streaming,
        )


@pytest.fixture(name="fakes")
def fakes_fixture(tmp_path: Path) -> Fakes:
    """Every CLI's fake, in a fresh folder (import it to use the fixture ``fakes``)."""
    return Fakes.make(tmp_path)


def recorded(cli: str, scenario: str) -> list[Any]:
    """The lines of a recording, as the fake CLI replays them."""
    text = (FAKES / cli / f"{scenario}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_wrapper(profile: str) -> ModuleType:
    """A bundled profile's wrapper as a module (importing it does not run a turn)."""
    spec = importlib.util.spec_from_file_location(
        f"{profile}_agent", BUNDLED / profile / "agent.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_plain(text: str, *also: str) -> None:
    """What a person reads: no terminal escapes, no traceback, no JSON (nor any of ``also``)."""
    for unwanted in ("\x1b", "Traceback", '{"', *also):
        assert unwanted not in text, text


def notes(partials: list[str]) -> list[str]:
    """The notes a wrapper streamed (retries, refusals: the pieces in parentheses)."""
    return [p.strip() for p in partials if p.strip().startswith("(")]


# --- what each profile makes of its CLI's recorded streams ---------------------------------


@dataclass
class Case:
    """What one profile's fake streams say, and what the wrapper must make of them."""

    profile: str
    cli: str
    session: str
    reply: str
    partials: list[str]
    resume_reply: str
    error: str
    #: Checks the argv of a resumed run names the session id.
    resumes: Callable[[list[str], str], bool]
    #: Where the fake found the message: argv, stdin or a file.
    message_in: Callable[[dict[str, Any]], str]
    install: str
    extra: dict[str, Any] = field(default_factory=dict)


def run(case: Case, fakes: Fakes, message: str = "what is here?", **options: Any) -> TurnResult:
    """One turn of ``case``'s profile with ``fakes`` (see :meth:`Fakes.turn`)."""
    return fakes.turn(message=message, profile=case.profile, **options)


def claude_message(entry: dict[str, Any]) -> str:
    user = [m for m in entry["stdin_lines"] if m.get("type") == "user"]
    content = user[0]["message"]["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def codex_resumes(argv: list[str], session: str) -> bool:
    return argv[-4:] == ["resume", "--", session, "-"]


def prompt_option(entry: dict[str, Any]) -> str:
    prompts = [a for a in entry["argv"] if a.startswith("--prompt=")]
    assert len(prompts) == 1 and entry["argv"][-1] == prompts[0], entry["argv"]
    return prompts[0].removeprefix("--prompt=")


def after_dashes(entry: dict[str, Any]) -> str:
    argv = entry["argv"]
    assert argv[-2] == "--", argv
    return str(argv[-1])


def aider_resumes(argv: list[str], session: str) -> bool:
    history = [a for a in argv if a.startswith("--chat-history-file=")]
    return (
        len(history) == 1
        and history[0].endswith(f"/.agentproc/aider/{session}.chat.md")
        and "--restore-chat-history" in argv
    )


def resume_option(argv: list[str], session: str) -> bool:
    return f"--resume={session}" in argv


CASES = [
    # Recorded from Claude Code by e2e/tests/test_claude_code.py (E2E_CAPTURE=1).
    Case(
        profile="claude-code",
        cli="claude",
        session=RECORDED_SESSION,
        reply="There are two entries: README.md and src.",
        partials=[
            "Let me look a",
            "t the files.",
            "\n\n",
            "There are two entries",
            ": README.md and src.",
        ],
        resume_reply="You told me: swordfish.",
        error="Invalid API key · Fix external API key",
        resumes=resume_option,
        message_in=claude_message,
        install="npm install -g @anthropic-ai/claude-code",
    ),
    Case(
        profile="codex",
        cli="codex",
        session=RECORDED_SESSION,
        reply="There is a README.md and a src folder.",
        partials=["Looking at the repository.", "\n\n", "There is a README.md and a src folder."],
        resume_reply="Earlier you asked about the files: README.md and src.",
        error="(HTTP 401 Unauthorized): Incorrect API key provided",
        resumes=codex_resumes,
        message_in=lambda entry: entry["stdin"],
        install="npm install -g @openai/codex",
    ),
    Case(
        profile="gemini-cli",
        cli="gemini",
        session=RECORDED_SESSION,
        reply="There are two entries: README.md and src.",
        partials=[
            "Let me c",
            "heck the",
            " files.",
            "\n\n",
            "There are two entries",
            ": README.md and src.",
        ],
        resume_reply="You asked about the files: README.md and src.",
        error="API key not valid. Please pass a valid API key.",
        resumes=resume_option,
        message_in=prompt_option,
        install="npm install -g @google/gemini-cli",
        # Gemini CLI saves no session for a turn that failed before the model
        # answered; the wrapper names none (tests/test_profile_gemini.py).
        extra={"session_on_error": False},
    ),
    # Recorded from opencode 1.18.33 by e2e/tests/test_opencode.py (session ids made stable).
    Case(
        profile="opencode",
        cli="opencode",
        session="ses_e2erecordedsession0001",
        reply="Noted: the secret is plums.",
        partials=["Noted: the secret is plums."],
        resume_reply="You said plums.",
        error="Incorrect API key provided: sk-e2e.",
        resumes=lambda argv, sid: f"--session={sid}" in argv,
        message_in=lambda entry: entry["stdin"],
        install="npm install -g opencode-ai",
    ),
    Case(
        profile="cursor-agent",
        cli="cursor-agent",
        session="4f6a1b2c-3d4e-4f50-8a9b-0c1d2e3f4a5b",
        # The CLI's `result` is all the turn's text run together, as documented.
        reply="Let me look at the files.There are two entries: README.md and src.",
        partials=["Let me look at the files.", "\n\n", "There are two entries: README.md and src."],
        resume_reply="You asked about the files: README.md and src.",
        error="Authentication failed: the API key is invalid",
        resumes=resume_option,
        message_in=after_dashes,
        install="curl https://cursor.com/install -fsS | bash",
    ),
    Case(
        profile="aider",
        cli="aider",
        session="",  # the wrapper makes up its own
        # Recorded from aider 0.86.2 by e2e/tests/test_aider.py.
        reply="Noted: the word is banana.",
        partials=["Noted: the word is banana.\n"],
        resume_reply="You told me banana.",
        error="the model server answered: Incorrect API key provided: sk-e2e.",
        resumes=aider_resumes,
        message_in=lambda entry: entry["message_file"],
        install="python -m pip install aider-install && aider-install",
    ),
]
BY_NAME = {case.profile: case for case in CASES}


def check_a_lost_session_starts_afresh(
    fakes: Fakes, on_resume: str, session: str = "an-old-session"
) -> dict[str, Any]:
    """A turn naming ``session``, which the CLI cannot resume (it replays
    ``on_resume``): the wrapper starts afresh with a note, and the fresh run
    answers. Returns the fresh run's log entry, for the CLI's own checks."""
    case = BY_NAME[fakes.profile]
    result = fakes.turn("first", "hello", session_id=session, on_resume=on_resume)
    assert result.error is None, result.error
    assert result.exit_code == 0
    note, _, rest = result.reply.partition("\n\n")
    assert f"session {session} could not be resumed here" in note
    assert rest == case.reply
    assert result.session_id == case.session
    failed, fresh = fakes.entries()
    assert case.resumes(failed["argv"], session), failed["argv"]
    return fresh


# --- the llm profile against a server on loopback ------------------------------------------


class Loopback:
    """A threaded HTTP server on 127.0.0.1 for one test, answering with ``handler``
    (its request log kept quiet); ``url`` is its address. Close it, or use it in
    a ``with``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        quiet = type(handler.__name__, (handler,), {"log_message": lambda *_: None})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Loopback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def llm_turn(
    url: str,
    home: Path,
    message: str = "hi",
    *,
    session_id: str = "",
    streaming: bool | None = None,
    attachments: tuple[Attachment, ...] = (),
    **settings: str,
) -> TurnResult:
    """One turn of the llm profile against the chat-completions server at ``url``,
    configured through the bridge's environment (``settings`` add LLM_* variables)."""
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AGENTPROC_HOME": str(home / "agentproc"),
        "LLM_BASE_URL": url,
        **settings,
    }
    return turn(
        "llm",
        message,
        session_id=session_id,
        streaming=streaming,
        attachments=attachments,
        environ=environ,
    )
