"""``agentproc serve`` with a Telegram bot, against the fake Bot API: a
person pairs, an admin approves with ``agentproc pairing``, the agent
answers; a ``kill -9`` in the middle of a reply loses nothing and posts
nothing twice."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fake_telegram import FakeTelegram
from helpers import check_stderr, cli
from serve_kit import serving

TOKEN = "123456:AAserve-token_value"
ENV = {"BOT_TOKEN": TOKEN}


def config(tmp: Path, script: str, **telegram: str) -> str:
    agent = tmp / "agent.sh"
    agent.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    agent.chmod(0o755)
    (tmp / "agent.yaml").write_text(f"name: agent\ncommand: {agent}\ntimeout_secs: 30\n")
    extra = "".join(f", {k}: {v}" for k, v in telegram.items())
    return (
        "routes:\n  agent: {profile: ./agent.yaml}\n"
        "channels:\n"
        f"  telegram: {{token_env: BOT_TOKEN, poll_timeout: 1{extra}}}\n"
    )


def test_a_stranger_pairs_and_talks_to_the_agent(tmp_path: Path) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        text = config(tmp_path, 'echo "agent: $AGENT_MESSAGE"\n', api_base=tg.api_base)
        with serving(tmp_path, text, env=ENV) as served:
            eve = tg.user("Eve", username="eve")
            chat = tg.private_chat(eve)
            tg.send_user_message(chat, eve, "hello?")
            note = tg.wait_for(lambda: tg.bot_messages(chat))[0].text
            code = note.split("code is ")[1].split()[0]
            approved = cli("pairing", "approve", code, "--data-dir", served.data_dir)
            assert approved.code == 0, approved
            tg.send_user_message(chat, eve, "now?")
            reply = tg.wait_for(lambda: [m for m in tg.bot_messages(chat) if "agent:" in m.text])
            assert reply[0].text == "agent: now?"
            assert served.stop() == 0
        assert TOKEN not in served.stderr and "AAserve" not in served.stderr
        check_stderr(served.stderr)


def test_a_kill_9_mid_reply_loses_nothing_and_posts_nothing_twice(tmp_path: Path) -> None:
    script = """
    for i in 1 2 3 4 5 6 7 8; do echo "AGENT_PARTIAL:\\"part $i. \\""; sleep 0.3; done
    echo "finished: $AGENT_MESSAGE"
    """
    with FakeTelegram(token=TOKEN) as tg:
        text = config(tmp_path, script, api_base=tg.api_base, access="open", groups="all")
        data = tmp_path / "data"
        group = tg.group("Team")
        ann = tg.user("Ann", username="ann")
        with serving(tmp_path, text, env=ENV, data_dir=data) as served:
            tg.send_user_message(group, ann, "one")
            # The preview is up and has been edited since: its post is in the log.
            # (A post whose answer dies with the bridge before it is logged is
            # the one message a restart cannot know of: Telegram has no way to
            # make a send idempotent.)
            tg.wait_for(lambda: any(m.edits for m in tg.bot_messages(group)), timeout=20)
            served.kill()
        with serving(tmp_path, text, env=ENV, data_dir=data) as again:
            tg.send_user_message(group, ann, "two")
            tg.wait_for(
                lambda: any("finished: two" in m.text for m in tg.bot_messages(group)),
                timeout=30,
            )
            assert again.stop() == 0
        shown = [m.text for m in tg.bot_messages(group)]
        # Turn one died with the first bridge: its preview was finished, as
        # abandoned, by editing it, not by posting again; turn two ran whole.
        assert len(shown) == 2, shown
        assert "this turn was abandoned" in shown[0]
        assert shown[1] == "finished: two"
        assert len(tg.calls("sendMessage", chat=group)) == 2
