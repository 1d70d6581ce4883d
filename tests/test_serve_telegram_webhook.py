"""``agentproc serve`` with a Telegram bot on a webhook, against the fake Bot
API: the fake POSTs updates to the bridge's HTTP listener on loopback, as
Telegram would to its public URL. And the polling side of the switch: a
polling bridge deletes a webhook left behind, and says plainly when one keeps
it from polling."""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fake_telegram import ApiError, FakeTelegram
from helpers import check_stderr, cli
from serve_kit import Served, serving

TOKEN = "123456:AAhook-token_value"
SECRET = "hook-secret_0123456789abcdef"
ALICE = "alice-token-0123456789abcdef"
ENV = {"BOT_TOKEN": TOKEN, "HOOK_SECRET": SECRET, "ALICE_TOKEN": ALICE}
PATH = "/telegram/hook"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
ANN_ID = 5001


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(tmp: Path, tg: FakeTelegram, *, port: int | None) -> str:
    """A route whose agent echoes, alice (with an API token and Ann's
    Telegram id), and a bot on the fake: by webhook on ``port``, or polling."""
    agent = tmp / "agent.sh"
    agent.write_text('#!/bin/sh\necho "agent: $AGENT_MESSAGE"\n')
    agent.chmod(0o755)
    (tmp / "agent.yaml").write_text(f"name: agent\ncommand: {agent}\ntimeout_secs: 30\n")
    hook = ""
    if port is not None:
        url = f"http://127.0.0.1:{port}{PATH}"
        hook = f"\n    webhook: {{url: '{url}', secret_env: HOOK_SECRET}}"
    return (
        textwrap.dedent(
            f"""\
        users:
          - {{name: alice, token_env: ALICE_TOKEN, telegram: {ANN_ID}}}
        routes:
          agent: {{profile: ./agent.yaml}}
        channels:
          telegram:
            token_env: BOT_TOKEN
            api_base: {tg.api_base}
            poll_timeout: 1"""
        )
        + hook
        + "\n"
    )


@contextmanager
def webhook_bridge(tmp: Path, tg: FakeTelegram) -> Iterator[Served]:
    port = free_port()
    with serving(tmp, config(tmp, tg, port=port), env=ENV, port=port) as served:
        yield served


def hook_post(served: Served, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
    """POST to the bridge's webhook route as Telegram (or anyone) would."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(base_url=served.url, timeout=30) as client:
        return client.post(PATH, content=data, headers=headers)


def conversations(served: Served) -> list[dict[str, Any]]:
    listed = cli("sessions", "list", "--json", "--data-dir", served.data_dir)
    assert listed.code == 0, listed
    return [json.loads(line) for line in listed.out.splitlines() if line.strip()]


def assert_error(answer: httpx.Response, status: int, code: str, *words: str) -> None:
    """The project's one error shape, with ``words`` in its message."""
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and set(error) == {"code", "message", "hint", "extra"}
    for word in words:
        assert word in error["message"], error


def assert_quiet(served: Served) -> None:
    """Neither the bot token nor the webhook secret is in the log."""
    err = served.stderr
    assert TOKEN not in err and "AAhook" not in err, err
    assert SECRET not in err, err
    check_stderr(err)


def test_a_message_and_its_reply_go_by_webhook(tmp_path: Path) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        chat = tg.private_chat(ann)
        # Sent while the bridge was down: Telegram sends it once the webhook is set.
        tg.send_user_message(chat, ann, "early")
        with webhook_bridge(tmp_path, tg) as served:
            tg.wait_for(lambda: tg.bot_messages(chat))
            tg.send_user_message(chat, ann, "hello")
            tg.wait_for(lambda: len(tg.bot_messages(chat)) == 2)
            # The API still wants alice's token; the webhook never did.
            with served.client(token="") as client:
                assert client.get("/v1/routes").status_code == 401
            assert served.stop() == 0
        assert [m.text for m in tg.bot_messages(chat)] == ["agent: early", "agent: hello"]
        (set_hook,) = tg.calls("setWebhook")
        assert set_hook.params == {
            "url": f"{served.url.rstrip('/')}{PATH}",
            "secret_token": SECRET,
            "allowed_updates": ["message", "callback_query"],
            "max_connections": 1,
            "drop_pending_updates": False,
        }
        assert not tg.calls("getUpdates") and not tg.calls("deleteWebhook")
        assert all(call.ok for call in tg.webhook_calls)
        assert f"updates by webhook to {served.url.rstrip('/')}{PATH}" in served.stderr
        assert_quiet(served)


def test_a_request_without_the_secret_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        chat = tg.private_chat(ann)
        forged = {"update_id": 1, "message": _message(chat.to_api(), ann.to_api(), "run rm -rf")}
        with webhook_bridge(tmp_path, tg) as served:
            assert_error(hook_post(served, forged), 401, "unauthenticated", HEADER)
            answer = hook_post(served, forged, **{HEADER: "not-the-secret-at-all"})
            assert_error(answer, 403, "forbidden", "does not match")
            # A bearer token is no way in either.
            answer = hook_post(served, forged, Authorization=f"Bearer {ALICE}")
            assert_error(answer, 401, "unauthenticated")
            assert conversations(served) == []
            assert served.stop() == 0
        assert tg.bot_messages(chat) == []
        assert_quiet(served)


def test_a_malformed_body_is_refused_with_the_reason(tmp_path: Path) -> None:
    with FakeTelegram(token=TOKEN) as tg, webhook_bridge(tmp_path, tg) as served:
        secret = {HEADER: SECRET}
        assert_error(hook_post(served, b"{not json", **secret), 400, "bad_update", "not JSON")
        assert_error(hook_post(served, b"[1, 2]", **secret), 400, "bad_update", "not an object")
        answer = hook_post(served, {"message": {"text": "hi"}}, **secret)
        assert_error(answer, 400, "bad_update", "no integer update_id")
        answer = hook_post(served, b"x" * (1024 * 1024 + 1), **secret)
        assert_error(answer, 413, "too_large")
        # The envelope is right but its content cannot be read: sending it
        # again could not help, so it is confirmed, with a warning.
        answer = hook_post(served, {"update_id": 7, "message": "not an object"}, **secret)
        assert answer.status_code == 200, answer.text
        assert conversations(served) == []
        assert served.stop() == 0
    assert "update 7 arrived by webhook but cannot be read" in served.stderr
    assert_quiet(served)


def test_a_redelivered_update_is_answered_once(tmp_path: Path) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        chat = tg.private_chat(ann)
        with webhook_bridge(tmp_path, tg) as served:
            sent = tg.send_user_message(chat, ann, "once")
            tg.wait_for(lambda: tg.bot_messages(chat))
            update = {"update_id": tg.webhook_calls[0].update_id, "message": sent}
            # Telegram sends it again (its answer was lost, say): confirmed,
            # and recognised by the log.
            assert hook_post(served, update, **{HEADER: SECRET}).status_code == 200
            tg.send_user_message(chat, ann, "twice")
            tg.wait_for(lambda: len(tg.bot_messages(chat)) == 2)
            assert served.stop() == 0
        # A second turn for the repeat would have run before "twice".
        assert [m.text for m in tg.bot_messages(chat)] == ["agent: once", "agent: twice"]
        (conv,) = conversations(served)
        assert conv["turn_count"] == 2
        assert_quiet(served)


def test_a_webhook_telegram_refuses_stops_the_start_plainly(tmp_path: Path) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        refusal = "Bad Request: bad webhook: Failed to resolve host: Name or service not known"
        tg.fail("setWebhook", error=ApiError(400, refusal))
        port = free_port()
        (tmp_path / "bridge.yaml").write_text(config(tmp_path, tg, port=port))
        run = cli(
            "serve", "--config", tmp_path / "bridge.yaml", "--port", str(port),
            "--data-dir", tmp_path / "data", env=ENV, timeout=30,
        )  # fmt: skip
    assert run.code == 1, run
    assert "cannot set the webhook to http://127.0.0.1" in run.err, run.err
    assert "failed to resolve host" in run.err.lower() and "webhook.url" in run.err
    assert TOKEN not in run.err and SECRET not in run.err


def test_polling_deletes_a_webhook_left_behind(tmp_path: Path) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        chat = tg.private_chat(ann)
        tg.call("setWebhook", {"url": "https://old.example/hook"})
        tg.send_user_message(chat, ann, "waiting")  # held for the webhook, never sent
        with serving(tmp_path, config(tmp_path, tg, port=None), env=ENV) as served:
            tg.wait_for(lambda: tg.bot_messages(chat))
            assert served.stop() == 0
        assert [m.text for m in tg.bot_messages(chat)] == ["agent: waiting"]
        (deleted,) = tg.calls("deleteWebhook")
        assert deleted.params == {"drop_pending_updates": False}
        assert tg.webhook is None and not tg.calls("setWebhook")[1:]
        assert_quiet(served)


def test_a_webhook_set_elsewhere_is_reported_plainly_by_a_polling_bridge(
    tmp_path: Path,
) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        chat = tg.private_chat(ann)
        with serving(tmp_path, config(tmp_path, tg, port=None), env=ENV) as served:
            tg.wait_for(lambda: tg.calls("getUpdates"))
            # Another program sets a webhook for the same bot.
            tg.call("setWebhook", {"url": "https://elsewhere.example/hook"})
            tg.wait_for(lambda: sum(not r.ok for r in tg.calls("getUpdates")) >= 2)
            tg.call("deleteWebhook", {})
            tg.send_user_message(chat, ann, "back")
            tg.wait_for(lambda: tg.bot_messages(chat), timeout=20)
            assert served.stop() == 0
        err = served.stderr
        assert "a webhook is set for this bot, so Telegram gives no updates to polling" in err
        assert "(409: Conflict: can't use getUpdates method while webhook is active" in err, err
        assert [m.text for m in tg.bot_messages(chat)] == ["agent: back"]
        assert_quiet(served)


def test_a_webhook_without_its_secret_is_a_config_error(tmp_path: Path) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        path = tmp_path / "bridge.yaml"
        path.write_text(config(tmp_path, tg, port=8443))
        run = cli("serve", "--config", path, "--check", env={**ENV, "HOOK_SECRET": ""})
    assert run.code == 2, run
    assert f"{path}:10: field 'channels.telegram.webhook.secret_env'" in run.err, run.err
    assert "HOOK_SECRET, which holds the webhook's secret, is empty" in run.err


def _message(chat: dict[str, Any], sender: dict[str, Any], text: str) -> dict[str, Any]:
    return {"message_id": 1, "date": 1, "chat": chat, "from": sender, "text": text}
