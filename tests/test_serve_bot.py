"""``agentproc serve`` with a bot of one's own (the example of docs/BOTS.md)
on Telegram, against the fake Bot API; and the config errors of ``bot:``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest
from fake_telegram import FakeTelegram
from helpers import check_stderr
from serve_kit import serving

from bridge.server.config import load_config
from bridge.server.errors import ConfigError
from bridge.store.sqlite import SQLiteStore

TOKEN = "123456:AAbot-token_value"
ENV = {"BOT_TOKEN": TOKEN}
EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "deploy_bot.py"


def config(tmp: Path, api_base: str, bot: str = str(EXAMPLE), ann: int = 0) -> str:
    agent = tmp / "agent.sh"
    agent.write_text('#!/bin/sh\necho "agent: $AGENT_MESSAGE"\n')
    agent.chmod(0o755)
    (tmp / "agent.yaml").write_text(f"name: agent\ncommand: {agent}\ntimeout_secs: 30\n")
    return (
        f"bot: {bot}\n"
        f"users:\n  - {{name: ann, telegram: {ann}}}\n"
        "routes:\n  agent: {profile: ./agent.yaml}\n"
        "channels:\n"
        f"  telegram: {{token_env: BOT_TOKEN, poll_timeout: 1, api_base: {api_base}}}\n"
    )


def test_the_example_bot_deploys_after_asking_and_leaves_the_rest_to_the_agent(
    tmp_path: Path,
) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        ann = tg.user("Ann", username="ann")
        chat = tg.private_chat(ann)
        with serving(tmp_path, config(tmp_path, tg.api_base, ann=ann.id), env=ENV) as served:

            def texts() -> list[str]:
                return [m.text for m in tg.bot_messages(chat)]

            tg.send_user_message(chat, ann, "/deploy feature-x")
            try:
                asked = tg.wait_for(lambda: [m for m in tg.bot_messages(chat) if m.buttons])[0]
            except TimeoutError:
                raise AssertionError(f"{texts()}\n{served.stderr}") from None
            assert asked.text == "Deploy feature-x to production?"
            tg.press_button(chat, ann, asked.message_id, asked.callback_data[0])
            tg.wait_for(lambda: any(t.startswith("agent: ") for t in texts()), timeout=20)
            tg.send_user_message(chat, ann, "/deploys")
            tg.wait_for(lambda: any("deploy(s) so far" in t for t in texts()))
            tg.send_user_message(chat, ann, "thanks")  # no handler: the agent's
            tg.wait_for(lambda: "agent: thanks" in texts())
            tg.send_user_message(chat, ann, "/help")
            tg.wait_for(lambda: any("/deploy - deploy a branch" in t for t in texts()))
            assert served.stop() == 0
        shown = texts()
        assert "Deploy feature-x to production?\n→ Deploy (answered by ann)" in shown
        assert (
            "agent: You are the release assistant of this repository.\n\n"
            "Deploy the branch feature-x and report what the deploy script printed."
        ) in shown
        assert "1 deploy(s) so far; the last was feature-x." in shown
        assert [a.text for a in tg.callback_answers] == ["You chose: Deploy"]
        menu = [c["command"] for c in tg.commands]
        assert menu[:5] == ["deploy", "deploys", "recap", "follow", "unfollow"]
        assert menu[5:] == ["new", "cancel", "status", "whoami", "help"], "the bridge's own"
    assert f"bot: {EXAMPLE} (/deploy, /deploys, /recap" in served.stderr, "the banner says"
    assert TOKEN not in served.stderr
    check_stderr(served.stderr)


@pytest.mark.parametrize(
    ("bot_file", "spec", "message"),
    [
        (None, "missing.py:bot", "no bot file "),
        ("x = 1\ny = undefined_name\n", "b.py", "NameError: name 'undefined_name' is not defined"),
        ("def broken(:\n", "b.py:bot", "SyntaxError: invalid syntax (line 1)"),
        ("bot = 42\n", "b.py:bot", "b.py:bot is a int, not a Bot"),
        (
            "from bridge.channels.bot import Bot\nmine = Bot()\n",
            "b.py:bot",
            "has no 'bot'; it defines mine",
        ),
        (None, "no_such_module_here:bot", "no module named 'no_such_module_here'"),
        (None, "b.py:not-a-name", "'not-a-name' is not a Python name"),
        (
            "from bridge.channels.bot import Bot\nbot = Bot()\n"
            "@bot.command('cancel')\nasync def c(t, m): ...\n",
            "b.py",
            "BotError: command 'cancel': /cancel is one of the bridge's own commands",
        ),
    ],
)
def test_a_bot_that_cannot_be_loaded_is_a_config_error_naming_why(
    tmp_path: Path, bot_file: str | None, spec: str, message: str
) -> None:
    if bot_file is not None:
        (tmp_path / "b.py").write_text(textwrap.dedent(bot_file))
    path = tmp_path / "bridge.yaml"
    path.write_text(config(tmp_path, "http://127.0.0.1:9", bot=spec))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    problems = "\n".join(caught.value.problems)
    assert f"{path}:1: field 'bot': " in problems and message in problems, problems
    if "NameError" in message:
        assert "(b.py, line 2)" in problems


def test_a_bot_needs_a_chat_channel(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    text = config(tmp_path, "http://127.0.0.1:9").split("channels:")[0]
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    assert "a bot's handlers run on chat channels, and none is configured" in str(
        caught.value.problems
    )


def test_a_kill_9_while_a_handler_waits_runs_nothing_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with FakeTelegram(token=TOKEN) as tg:
        ann = tg.user("Ann", username="ann")
        chat = tg.private_chat(ann)
        text = config(tmp_path, tg.api_base, ann=ann.id)

        def texts() -> list[str]:
            return [m.text for m in tg.bot_messages(chat)]

        with serving(tmp_path, text, env=ENV, data_dir=data) as served:
            tg.send_user_message(chat, ann, "/deploy hotfix")
            asked = tg.wait_for(lambda: [m for m in tg.bot_messages(chat) if m.buttons])[0]
            served.kill()  # the handler dies waiting for the answer
        with serving(tmp_path, text, env=ENV, data_dir=data) as again:
            tg.press_button(chat, ann, asked.message_id, asked.callback_data[0])
            tg.wait_for(lambda: tg.callback_answers)
            tg.send_user_message(chat, ann, "/deploys")
            tg.wait_for(lambda: "No deploys from this chat yet." in texts())
            assert again.stop() == 0
        assert [t for t in texts() if t.startswith("Deploy hotfix")] == [
            "Deploy hotfix to production?"
        ], "asked once: the message was not handled again after the restart"
        assert [a.text for a in tg.callback_answers] == ["This question is closed."]
        assert not any(t.startswith("agent:") for t in texts()), "nothing deployed"

    async def handled() -> list[str]:
        async with SQLiteStore(data / "sessions.db") as store:
            (conv,) = await store.conversations()
            return [
                e.data["text"] for e in await store.read(conv.id) if e.type == "message.handled"
            ]

    assert anyio.run(handled) == ["/deploy hotfix", "/deploys"], "each kept once"
