"""``agentproc serve`` with a Discord bot, against the fake Discord: a
stranger pairs, an admin approves with ``agentproc pairing``, the agent
answers; a ``kill -9`` in the middle of a reply loses nothing and posts
nothing twice, and what was written while the bridge was down is answered
after the restart."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fake_discord import FakeDiscord
from helpers import check_stderr, cli
from serve_kit import serving

TOKEN = "MTAxNTk2NzI1.GsErVe.serve-token_value-abcdefghijkl"
ENV = {"DC_TOKEN": TOKEN}


def config(tmp: Path, script: str, **discord: str) -> str:
    agent = tmp / "agent.sh"
    agent.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    agent.chmod(0o755)
    (tmp / "agent.yaml").write_text(f"name: agent\ncommand: {agent}\ntimeout_secs: 30\n")
    extra = "".join(f", {k}: {v}" for k, v in discord.items())
    return (
        "routes:\n  agent: {profile: ./agent.yaml}\n"
        f"channels:\n  discord: {{token_env: DC_TOKEN{extra}}}\n"
    )


def connected(dc: FakeDiscord) -> None:
    """Until the bridge has a gateway session: what is written before it has
    one, Discord sends to nobody (and no history knows it yet)."""
    dc.wait_for(lambda: dc.session_id and dc.events, timeout=20)


def test_a_stranger_pairs_and_talks_to_the_agent(tmp_path: Path) -> None:
    with FakeDiscord(token=TOKEN) as dc:
        text = config(tmp_path, 'echo "agent: $AGENT_MESSAGE"\n', api_base=dc.api_base)
        with serving(tmp_path, text, env=ENV) as served:
            eve = dc.user("eve")
            dm = dc.dm(eve)
            connected(dc)
            dc.send_user_message(dm, eve, "hello?")
            note = dc.wait_for(lambda: dc.bot_messages(dm), timeout=20)[0].content
            code = note.split("code is ")[1].split()[0]
            approved = cli("pairing", "approve", code, "--data-dir", served.data_dir)
            assert approved.code == 0, approved
            dc.send_user_message(dm, eve, "now?")
            reply = dc.wait_for(lambda: [m for m in dc.bot_messages(dm) if "agent:" in m.content])
            assert reply[0].content == "agent: now?"
            assert served.stop() == 0
        assert TOKEN not in served.stderr and "serve-token" not in served.stderr
        check_stderr(served.stderr)


def test_a_kill_9_mid_reply_loses_nothing_and_posts_nothing_twice(tmp_path: Path) -> None:
    script = """
    for i in 1 2 3 4 5 6 7 8; do echo "AGENT_PARTIAL:\\"part $i. \\""; sleep 0.3; done
    echo "finished: $AGENT_MESSAGE"
    """
    with FakeDiscord(token=TOKEN) as dc:
        text = config(tmp_path, script, api_base=dc.api_base, access="open")
        data = tmp_path / "data"
        general = dc.text_channel(dc.guild("Team"), "general")
        ann = dc.user("ann")
        with serving(tmp_path, text, env=ENV, data_dir=data) as served:
            connected(dc)
            dc.mention(general, ann, "one")
            thread = dc.wait_for(lambda: dc.threads_of(general), timeout=20)[0]
            # The preview is up and has been edited since: its post is in the log.
            dc.wait_for(lambda: any(m.edits for m in dc.bot_messages(thread)), timeout=20)
            served.kill()
        # Written while no bridge runs: Discord will not send it again.
        dc.send_user_message(thread, ann, "two")
        with serving(tmp_path, text, env=ENV, data_dir=data) as again:
            dc.wait_for(
                lambda: any("finished: two" in m.content for m in dc.bot_messages(thread)),
                timeout=30,
            )
            assert again.stop() == 0
        check_stderr(again.stderr)
        shown = [m.content for m in dc.bot_messages(thread)]
        # Turn one died with the first bridge: its preview was finished, as
        # abandoned, by editing it, not by posting again; turn two, read from
        # the thread's history at the restart, ran whole.
        assert len(shown) == 2, shown
        assert "this turn was abandoned" in shown[0]
        assert shown[1] == "finished: two"
        posts = [c for c in dc.calls("POST /channels/{channel_id}/messages", channel=thread)]
        assert [c.status for c in posts] == [200, 200]
        assert not dc.bot_messages(general), "nothing is said in the channel itself"
