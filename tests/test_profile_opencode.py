"""The opencode wrapper on streams recorded from opencode 1.18.33.

The recordings in ``tests/fake_clis/opencode/`` are captured by
``e2e/tests/test_opencode.py`` with ``E2E_CAPTURE=1`` (stdout as it was,
stderr, with the log lines ``--print-logs`` adds, as ``stderr`` directives).
These tests replay them through the real wrapper, as the bridge runs it, and
check what opencode 1.18 says that the JSON events alone do not: a refused
permission, a model call being retried, an answer that never finishes.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from profile_kit import BY_NAME, Fakes, load_wrapper, notes, recorded, run
from profile_kit import fakes_fixture as fakes_fixture  # the fixture `fakes`

from agentproc.wrap import strip_ansi

OPENCODE = BY_NAME["opencode"]


@pytest.fixture(scope="module")
def wrapper() -> ModuleType:
    return load_wrapper("opencode")


def recorded_stderr(scenario: str) -> list[str]:
    return [
        data["text"].rstrip("\n")
        for data in recorded("opencode", scenario)
        if isinstance(data, dict) and data.get("fake") == "stderr"
    ]


# --- replayed turns ------------------------------------------------------------------------


def test_an_answer_that_never_finishes_is_stopped_after_three_tries(fakes: Fakes) -> None:
    result = run(OPENCODE, fakes, scenario="unfinished")
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith(
        "the model server ended its answer 3 times in a row without a finish reason"
    )
    assert "the turn was stopped after 3 tries" in result.error
    assert notes(result.partials) == [
        "(retrying: the model server's answer ended without a finish reason, opencode asks "
        f"again (attempt {n} of at most 3))"
        for n in (2, 3)
    ]
    assert result.session_id == OPENCODE.session


def test_a_retried_model_call_ends_with_the_final_answer_only(fakes: Fakes) -> None:
    result = run(OPENCODE, fakes, scenario="cut")
    assert result.error is None, (result.error, result.stderr)
    assert result.reply == "The whole answer."
    # The replayed log arrives in one piece, after the retry went through, as
    # opencode's own log sometimes does: the retry is said after the answer.
    notes = [p for p in result.partials if "retr" in p]
    assert len(notes) == 1, result.partials
    assert notes[0].strip().startswith("(retried: the model server answered: ")
    assert notes[0].strip().endswith("; attempt 2 went through)")


def test_retries_that_fail_end_with_the_servers_words(fakes: Fakes) -> None:
    result = run(OPENCODE, fakes, scenario="retry")
    assert result.exit_code == 1
    assert result.error == (
        "The server had an error while processing your request. Sorry about that!"
    )


def test_a_session_made_in_another_folder_starts_afresh_with_a_note(
    fakes: Fakes, tmp_path: Path
) -> None:
    # Where the wrapper noted the session's folder when opencode made it.
    records = fakes.bin.parent / ".agentproc" / "opencode" / "sessions"
    records.mkdir(parents=True)
    (records / "ses_elsewhere").write_text(str(tmp_path / "another-folder"))
    result = run(OPENCODE, fakes, "and now?", session_id="ses_elsewhere")
    assert result.error is None, (result.error, result.stderr)
    note, answer = result.reply.split("\n\n")
    assert note.startswith("(The earlier opencode session ses_elsewhere belongs to the folder")
    assert answer == OPENCODE.reply
    argv = fakes.last()["argv"]
    assert not any(a.startswith("--session") for a in argv), argv
    assert result.session_id == OPENCODE.session


def test_a_new_session_notes_its_folder(fakes: Fakes) -> None:
    result = run(OPENCODE, fakes)
    assert result.error is None, (result.error, result.stderr)
    record = fakes.bin.parent / ".agentproc" / "opencode" / "sessions" / OPENCODE.session
    assert record.read_text() == str(fakes.bin.parent.resolve())
    # The next turn in the same folder resumes without asking opencode where.
    run(OPENCODE, fakes, "and now?", scenario="resume", session_id=OPENCODE.session)
    assert [e["argv"][0] for e in fakes.entries()] == ["run", "run"]
    assert f"--session={OPENCODE.session}" in fakes.last()["argv"]


# --- what the wrapper reads from opencode's own words ------------------------------------


def test_retries_are_read_from_the_recorded_log_lines(wrapper: ModuleType) -> None:
    lines = recorded_stderr("retry")
    seen = []
    for end in range(1, len(lines)):
        # As the log stood after each line, looked at just before the next one.
        later = wrapper.log_time(lines[end]) or wrapper.log_time(lines[end - 1]) or 0
        found = wrapper.retry_from_logs("\n".join(lines[:end]), now=later)
        if found and found not in seen:
            seen.append(found)
    assert [attempt for attempt, _ in seen] == [2, 3, 4, 5, 6]
    assert seen[0][1] == "Rate limit reached for requests. Please try again in 20s"
    assert {cause for _, cause in seen[1:]} == {
        "The server had an error while processing your request. Sorry about that!"
    }
    # Once opencode gave up, nothing is being retried any more.
    assert wrapper.retry_from_logs("\n".join(lines), now=4e9) is None


def test_retries_made_counts_the_calls_made_again(wrapper: ModuleType) -> None:
    assert wrapper.retries_made("\n".join(recorded_stderr("cut")))[0] == 1
    retries, cause = wrapper.retries_made("\n".join(recorded_stderr("retry")))
    assert retries == 5
    assert cause.startswith("The server had an error")
    assert wrapper.retries_made("\n".join(recorded_stderr("first"))) == (0, "")


#: What opencode 1.18.33 logged (trimmed) when its model library retried a
#: call cut before the first chunk on its own: two `stream` lines of one step,
#: no `stream error` between them.
SILENT_RETRY = """\
timestamp=2026-12-02T05:37:18.871Z level=INFO run=c2 message=process session.id=ses_1 messageID=m1
timestamp=2026-12-02T05:37:18.877Z level=INFO run=c2 message=stream providerID=fake small=false
timestamp=2026-12-02T05:37:18.915Z level=INFO run=c2 message="llm runtime selected"
timestamp=2026-12-02T05:37:21.051Z level=INFO run=c2 message=stream providerID=fake small=false
timestamp=2026-12-02T05:37:21.107Z level=INFO run=c2 message=loop session.id=ses_1 step=1
timestamp=2026-12-02T05:37:21.108Z level=INFO run=c2 message="exiting loop" session.id=ses_1"""

#: Two steps (a tool call, then the answer): each `stream` follows a `loop`.
TWO_STEPS = """\
timestamp=2026-12-02T05:36:30.297Z level=INFO run=0f message=loop session.id=ses_2 step=0
timestamp=2026-12-02T05:36:30.310Z level=INFO run=0f message=stream providerID=fake small=false
timestamp=2026-12-02T05:36:31.297Z level=INFO run=0f message=loop session.id=ses_2 step=1
timestamp=2026-12-02T05:36:31.310Z level=INFO run=0f message=stream providerID=fake small=false
timestamp=2026-12-02T05:36:32.929Z level=INFO run=0f message="exiting loop" session.id=ses_2"""


def test_a_retry_opencode_logged_no_error_for_is_still_counted(wrapper: ModuleType) -> None:
    assert wrapper.retries_made(SILENT_RETRY) == (1, "")
    assert wrapper.retries_made(TWO_STEPS) == (0, "")


def test_a_failure_is_not_a_retry_until_opencode_has_had_time_to_give_up(
    wrapper: ModuleType,
) -> None:
    lines = recorded_stderr("cut")
    failed = next(i for i, line in enumerate(lines) if 'message="stream error"' in line)
    log = "\n".join(lines[: failed + 1])
    written = wrapper.log_time(lines[failed])
    assert wrapper.retry_from_logs(log, now=written + 0.05) is None
    attempt, cause = wrapper.retry_from_logs(log, now=written + 1)
    assert attempt == 2
    assert cause == "Cannot connect to API: The socket connection was closed unexpectedly"


def test_the_refused_permission_is_read_from_stderr(wrapper: ModuleType) -> None:
    stderr = "\n".join(recorded_stderr("rejected"))
    assert wrapper.PERMISSION_LINE.findall(strip_ansi(stderr)) == ["bash (touch made-by-the-tool)"]


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("Incorrect API key provided", "Incorrect API key provided"),
        ('{"error": {"message": "Upstream said no", "type": "x"}}', "Upstream said no"),
        (
            json.dumps({"error": {"message": json.dumps({"error": {"message": "deep"}})}}),
            "deep",
        ),
        (
            'Provider request failed with HTTP 500: {"detail": "boom"}',
            "Provider request failed with HTTP 500: boom",
        ),
        ('[{"error": {"message": "first of a list"}}]', "first of a list"),
        ("{not json at all", "{not json at all"),
    ],
)
def test_error_messages_are_unwrapped(wrapper: ModuleType, raw: str, plain: str) -> None:
    assert wrapper.plain_message(raw) == plain
