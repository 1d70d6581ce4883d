"""The llm profile against a fake Chat Completions API.

The llm profile wraps no CLI: its agent calls the endpoint itself, so these
tests run this checkout's ``agentproc`` (``run`` or ``chat``) on the bundled
profile with ``LLM_BASE_URL``, ``LLM_MODEL`` and ``LLM_API_KEY`` pointing at
the fake model server. The agent does not retry: a 401, a 429 or a 500 fails
the turn at once with the server's words. It has no tools, so nothing needs
an approval.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.fakemodel import Cut, FakeModel, Reply, Status
from e2e.fakemodel.openai_chat import Unfinished

from .common import Suite
from .conftest import agentproc

LLM = Suite("llm")
run_json = LLM.run_json
assert_plain = LLM.assert_plain


def llm_env(env: dict[str, str], model: FakeModel) -> dict[str, str]:
    return {
        **env,
        "LLM_BASE_URL": f"{model.url}/v1",
        "LLM_MODEL": "e2e-model",
        "LLM_API_KEY": "sk-e2e",
    }


def test_a_streamed_answer_and_its_session(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    model.script(Reply("Hello from the fake model.", chunks=4))
    data = run_json(llm_env(env, model), project, "hello")
    assert data["error"] is None, data
    assert data["reply"] == "Hello from the fake model."
    assert len(data["partials"]) == 4
    assert len(data["session_id"]) == 32
    (call,) = model.model_calls
    assert call.headers["authorization"] == "Bearer sk-e2e"
    assert call.json["messages"] == [{"role": "user", "content": "hello"}]


def test_chat_sends_the_first_turn_with_the_second(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    model.script(Reply("Noted: banana."), Reply("You said banana."))
    result = agentproc(
        "chat",
        "llm",
        env=llm_env(env, model),
        cwd=project,
        input=b"remember banana\nwhat did I say?\n",
    )
    assert result.code == 0, result
    assert "Noted: banana." in result.out and "You said banana." in result.out
    assert model.model_calls[1].json["messages"] == [
        {"role": "user", "content": "remember banana"},
        {"role": "assistant", "content": "Noted: banana."},
        {"role": "user", "content": "what did I say?"},
    ]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (
            Status(401),
            "the model server answered 401 Unauthorized: Incorrect API key provided: sk-e2e. "
            "You can find your API key at https://platform.openai.com/account/api-keys.",
        ),
        (
            Status(429, headers={"Retry-After": "20"}),
            "the model server answered 429 Too Many Requests: Rate limit reached for requests. "
            "Please try again in 20s. (it asks to wait 20 s before trying again)",
        ),
        (
            Status(500),
            "the model server answered 500 Internal Server Error: The server had an error "
            "while processing your request. Sorry about that!",
        ),
    ],
    ids=["401", "429", "500"],
)
def test_an_error_fails_at_once_with_the_servers_words(
    model: FakeModel, env: dict[str, str], project: Path, status: Status, error: str
) -> None:
    model.script(status, Reply("not asked for"))
    data = run_json(llm_env(env, model), project, "hello")
    assert data["exit_code"] == 1
    assert data["error"] == error
    assert_plain(data["error"])
    assert len(model.model_calls) == 1  # no retries


@pytest.mark.parametrize("cut", [Cut("This answer is cut"), Unfinished("This answer is cut")])
def test_a_cut_answer_fails_keeps_what_streamed_and_is_not_remembered(
    model: FakeModel, env: dict[str, str], project: Path, cut: Cut
) -> None:
    model.script(cut, Reply("Starting over."))
    env = llm_env(env, model)
    data = run_json(env, project, "hello")
    assert data["exit_code"] == 1
    assert data["error"].startswith("the model server's answer was cut off: ")
    assert "".join(data["partials"]) == "This answer "  # two of its three pieces
    again = run_json(env, project, "hello again", "--session", data["session_id"])
    assert again["error"] is None, again
    # The cut turn is not part of the conversation.
    assert model.model_calls[1].json["messages"] == [{"role": "user", "content": "hello again"}]


def test_what_is_missing_is_named(model: FakeModel, env: dict[str, str], project: Path) -> None:
    data = run_json({**llm_env(env, model), "LLM_MODEL": ""}, project, "hello")
    assert data["error"].startswith("set LLM_MODEL to the model to use")
    gone = {**llm_env(env, model), "LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    data = run_json(gone, project, "hello")
    assert data["error"].startswith("cannot reach the model server at http://127.0.0.1:9/v1")
    assert model.requests == []
    assert json.dumps(data)  # nothing unserialisable slipped in
