"""``agentproc serve`` with a Slack app, against the fake Slack: a person
pairs, an admin approves with ``agentproc pairing``, the agent answers; a
``kill -9`` in the middle of a streamed reply loses nothing and posts nothing
twice; the HTTP Events API takes only requests Slack signed."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

from fake_slack import FakeSlack, sign
from helpers import check_stderr, cli
from serve_kit import serving

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def config(tmp: Path, script: str, slack: FakeSlack, *, events: bool = False, **extra: str) -> str:
    agent = tmp / "agent.sh"
    agent.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    agent.chmod(0o755)
    (tmp / "agent.yaml").write_text(f"name: agent\ncommand: {agent}\ntimeout_secs: 30\n")
    how = "signing_secret_env: SIGNING" if events else "app_token_env: APP_TOKEN"
    more = "".join(f", {k}: {v}" for k, v in extra.items())
    return (
        "routes:\n  agent: {profile: ./agent.yaml}\n"
        "channels:\n"
        f"  slack: {{bot_token_env: BOT_TOKEN, {how}, api_base: '{slack.api_base}'{more}}}\n"
    )


def env_of(slack: FakeSlack) -> dict[str, str]:
    return {"BOT_TOKEN": slack.bot_token, "APP_TOKEN": slack.app_token, "SIGNING": SECRET}


def test_a_stranger_pairs_and_talks_to_the_agent(tmp_path: Path) -> None:
    script = 'env > "$0.env"\necho "agent: $AGENT_MESSAGE"\n'
    with FakeSlack() as slack:
        with serving(tmp_path, config(tmp_path, script, slack), env=env_of(slack)) as served:
            eve = slack.user("Eve")
            slack.dm(eve, "hello?")
            im = slack.im(eve)
            note = slack.wait_for(lambda: slack.bot_messages(im))[0].text
            code = note.split("code is ")[1].split()[0]
            approved = cli("pairing", "approve", code, "--data-dir", served.data_dir)
            assert approved.code == 0, approved
            slack.dm(eve, "now?")
            reply = slack.wait_for(
                lambda: [m for m in slack.bot_messages(im) if m.text.startswith("agent:")]
            )
            assert reply[0].text == "agent: now?"
            assert served.stop() == 0
        agent_env = (tmp_path / "agent.sh.env").read_text()
        for secret in (slack.bot_token, slack.app_token, "fake-bot-token", "fake-app-token"):
            assert secret not in served.stderr and secret not in agent_env
        check_stderr(served.stderr)


def test_a_kill_9_mid_reply_loses_nothing_and_posts_nothing_twice(tmp_path: Path) -> None:
    script = """
    for i in 1 2 3 4 5 6 7 8; do echo "AGENT_PARTIAL:\\"part $i. \\""; sleep 0.3; done
    echo "finished: $AGENT_MESSAGE"
    """
    with FakeSlack() as slack:
        text = config(tmp_path, script, slack, access="open")
        data = tmp_path / "data"
        general = slack.channel("general")
        ann = slack.user("Ann")
        with serving(tmp_path, text, env=env_of(slack), data_dir=data) as served:
            asked = slack.mention(general, ann, "one")
            # The reply streams, and its stream has grown since it started:
            # the stream's message is in the log.
            slack.wait_for(
                lambda: any(m.appends for m in slack.bot_messages(general, asked.ts)), timeout=20
            )
            served.kill()
        with serving(tmp_path, text, env=env_of(slack), data_dir=data) as again:
            slack.mention(general, ann, "two", thread=asked.ts)
            slack.wait_for(
                lambda: any(
                    "finished: two" in m.text for m in slack.bot_messages(general, asked.ts)
                ),
                timeout=30,
            )
            assert again.stop() == 0
        shown = [m.text for m in slack.bot_messages(general, asked.ts)]
        # Turn one died with the first bridge: its streamed message was
        # finished, as abandoned, by editing it; turn two ran whole.
        assert len(shown) == 2, shown
        assert "this turn was abandoned" in shown[0]
        assert shown[1] == "finished: two"
        started = slack.calls("chat.startStream") + slack.calls("chat.postMessage")
        assert len([c for c in started if c.ok]) == 2
        assert not any(m.streaming for m in slack.bot_messages(general))


def test_the_events_api_takes_only_what_slack_signed(tmp_path: Path) -> None:
    import httpx

    with FakeSlack(signing_secret=SECRET) as slack:
        text = config(tmp_path, 'echo "agent: $AGENT_MESSAGE"\n', slack, events=True, access="open")
        with serving(tmp_path, text, env=env_of(slack)) as served:
            url = f"{served.url.rstrip('/')}/slack/events"
            slack.events_url = url
            ann = slack.user("Ann")
            general = slack.channel("general")
            asked = slack.mention(general, ann, "by http")
            reply = slack.wait_for(lambda: slack.bot_messages(general, asked.ts), timeout=20)
            assert reply[0].text == "agent: by http"
            assert all(c.status == 200 for c in slack.hook_calls)
            body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
            now = str(int(time.time()))
            good = {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": sign(SECRET, now, body)}
            with httpx.Client(timeout=10) as client:
                answered = client.post(url, content=body, headers=good)
                assert answered.status_code == 200 and answered.json() == {"challenge": "c-123"}
                assert client.post(url, content=body).status_code == 401
                wrong = {**good, "X-Slack-Signature": sign("another-secret", now, body)}
                assert client.post(url, content=body, headers=wrong).status_code == 401
                old = str(int(time.time()) - 600)
                stale = {
                    "X-Slack-Request-Timestamp": old,
                    "X-Slack-Signature": sign(SECRET, old, body),
                }
                refused = client.post(url, content=body, headers=stale)
                assert refused.status_code == 401 and "five minutes" in refused.text
                garbage = b"not json"
                signed = {
                    "X-Slack-Request-Timestamp": now,
                    "X-Slack-Signature": sign(SECRET, now, garbage),
                }
                assert client.post(url, content=garbage, headers=signed).status_code == 400
            assert served.stop() == 0
        assert SECRET not in served.stderr and slack.bot_token not in served.stderr
        check_stderr(served.stderr)
