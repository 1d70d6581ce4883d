"""The Slack channel (platform adapter, channel worker, delivery) against the
fake Slack on loopback, with the real slack_sdk and Bolt in between. Most tests run
twice: receiving by Socket Mode, and by the HTTP Events API (the fake POSTs
signed events to the HTTP app's route, served by uvicorn)."""

from __future__ import annotations

import logging
import socket
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
import uvicorn
from anyio.abc import TaskGroup
from chat_kit import ASKER
from fake_slack import FakeSlack

from bridge.channels import reply_plan as rp
from bridge.channels.commands import COMMANDS
from bridge.channels.delivery import Delivery
from bridge.channels.errors import Closing
from bridge.channels.http.app import ApiRoute, create_app
from bridge.channels.inbound import ChannelAccess, ChannelWorker
from bridge.channels.platform import Inbox, Incoming, Press
from bridge.channels.slack import SlackPlatform, limits_for
from bridge.channels.slack_http import events_hook
from bridge.conversations.dispatcher import Dispatcher
from bridge.server.serve import bind
from bridge.store.base import Store
from bridge.store.memory import MemoryStore
from bridge.store.records import DELIVERY_FINISHED, Event, Route
from bridge.store.sqlite import SQLiteStore
from bridge.turn.profile import Profile

pytestmark = pytest.mark.anyio
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ROUTE = Route("bundled:test", "/", "test")
ANN = "U0000ANN"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def quick(thread: str) -> rp.Limits:
    """Slack's limits, with the test's pace: no waiting between edits."""
    return replace(
        limits_for(thread), edit_interval=0.05, send_interval=0.0, first_chars=1, first_delay=0
    )


def fences_balanced(text: str) -> bool:
    return sum(line.startswith("```") for line in text.splitlines()) % 2 == 0


def agent(tmp: Path, script: str) -> Profile:
    path = tmp / "agent.sh"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    return Profile(command="/bin/sh", args=[str(path)], timeout_secs=20)


@pytest.fixture(params=["socket", "events"])
def receiving(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def slack_bridge(
    tmp: Path,
    profile: Profile,
    receiving: str,
    *,
    policy: str = "pairing",
    store: Store | None = None,
    wrap: Callable[[Inbox], Inbox] | None = None,
    **fake: object,
) -> AsyncIterator[tuple[FakeSlack, Dispatcher]]:
    sock = bind("127.0.0.1", 0) if receiving == "events" else None
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events" if sock else ""
    options: dict[str, object] = {"events_url": url, "signing_secret": SECRET if sock else ""}
    with FakeSlack(**{**options, **fake}) as slack:  # type: ignore[arg-type]
        async with bridge_on(slack, tmp, profile, sock, policy=policy, store=store, wrap=wrap) as d:
            yield slack, d
    if sock is not None:
        sock.close()


@asynccontextmanager
async def bridge_on(
    slack: FakeSlack,
    tmp: Path,
    profile: Profile,
    sock: socket.socket | None = None,
    *,
    policy: str = "pairing",
    store: Store | None = None,
    wrap: Callable[[Inbox], Inbox] | None = None,
) -> AsyncIterator[Dispatcher]:
    """A bridge on an existing fake Slack (a second one after a restart)."""
    platform = SlackPlatform(
        slack.bot_token,
        app_token=slack.app_token if sock is None else "",
        signing_secret=SECRET if sock else "",
        api_base=slack.api_base,
        files_dir=tmp / "files",
        commands=COMMANDS,
    )
    async with store or MemoryStore() as kept, Dispatcher(kept, {ROUTE: profile}) as d:
        await platform.start()
        rules = ChannelAccess(policy=policy, users={ANN: ("ann", False)})  # type: ignore[arg-type]
        worker = ChannelWorker(platform, d, ROUTE, rules)
        async with anyio.create_task_group() as tasks:
            if sock is not None:
                serve_events(tasks, platform, d, sock)
            tasks.start_soon(platform.run, wrap(worker) if wrap else worker)
            tasks.start_soon(Delivery(platform, d, quick).run)
            yield d
            tasks.cancel_scope.cancel()
        await platform.close()


def serve_events(
    tasks: TaskGroup, platform: SlackPlatform, d: Dispatcher, sock: socket.socket
) -> None:
    app = create_app(d, [ApiRoute("test", ROUTE)], page=False, hooks=[events_hook(platform)])
    config = uvicorn.Config(app, log_config=None, lifespan="off")
    tasks.start_soon(uvicorn.Server(config).serve, [sock])


async def test_a_mention_is_answered_in_its_thread_streamed_and_resumed(
    tmp_path: Path, receiving: str
) -> None:
    profile = agent(
        tmp_path,
        """
        for i in 1 2 3; do echo "AGENT_PARTIAL:\\"step $i. \\""; sleep 0.1; done
        echo "AGENT_SESSION:s-1"
        echo "all done: $AGENT_MESSAGE (resumed '$AGENT_SESSION_ID')"
        """,
    )
    async with slack_bridge(tmp_path, profile, receiving) as (slack, _):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        asked = slack.mention(general, ann, "hello")
        await slack.until(
            lambda: any("all done" in m.text for m in slack.bot_messages(general, asked.ts))
        )
        shown = slack.bot_messages(general, asked.ts)
        assert [m.text for m in shown] == ["all done: hello (resumed '')"]
        assert not shown[0].streaming
        assert slack.calls("chat.startStream"), "the reply streamed"
        assert slack.statuses and slack.statuses[0]["thread_ts"] == asked.ts
        # A reply in the thread reaches the bot without a mention.
        slack.say(general, ann, "again", thread=asked.ts)
        await slack.until(
            lambda: slack.bot_messages(general, asked.ts)[-1].text.startswith("all done: again")
        )
        assert slack.bot_messages(general, asked.ts)[-1].text == "all done: again (resumed 's-1')"
        # The mention came as app_mention and message: answered once.
        assert not slack.bot_messages(general, None)[2:]


async def log_of(d: Dispatcher) -> list[Event]:
    return [e for c in await d.store.conversations() for e in await d.store.read(c.id)]


async def test_a_thread_goes_on_without_a_mention_after_a_restart(tmp_path: Path) -> None:
    profile = agent(
        tmp_path, 'echo "AGENT_SESSION:s-9"\necho "re: $AGENT_MESSAGE ($AGENT_SESSION_ID)"\n'
    )
    db = tmp_path / "sessions.db"
    with FakeSlack() as slack:
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")

        def replies(ts: str) -> list[str]:
            return [m.text for m in slack.bot_messages(general, ts) if not m.streaming]

        async with bridge_on(slack, tmp_path, profile, store=SQLiteStore(db)) as d:
            asked = slack.mention(general, ann, "hello")
            await slack.until(lambda: replies(asked.ts) == ["re: hello ()"])
            with anyio.fail_after(10):  # and the delivery is recorded
                while not any(e.type == DELIVERY_FINISHED for e in await log_of(d)):
                    await anyio.sleep(0.02)
        # A new bridge: nothing in its memory knows the thread, the log does.
        async with bridge_on(slack, tmp_path, profile, store=SQLiteStore(db)):
            chatter = slack.say(general, ann, "lunch?")
            slack.say(general, ann, "not for the bot", thread=chatter.ts)
            slack.say(general, ann, "and then?", thread=asked.ts)
            await slack.until(lambda: len(replies(asked.ts)) == 2)
        assert replies(asked.ts) == ["re: hello ()", "re: and then? (s-9)"]
        assert replies(chatter.ts) == [], "a thread the bridge never talked in stays unread"


async def test_a_dm_is_one_conversation_answered_at_top_level(
    tmp_path: Path, receiving: str
) -> None:
    profile = agent(
        tmp_path, 'echo "AGENT_SESSION:dm-1"\necho "dm: $AGENT_MESSAGE ($AGENT_SESSION_ID)"\n'
    )
    async with slack_bridge(tmp_path, profile, receiving) as (slack, _):
        ann = slack.user("Ann", id=ANN)
        slack.dm(ann, "one")
        im = slack.im(ann)
        await slack.until(lambda: slack.bot_messages(im))
        slack.dm(ann, "two")
        await slack.until(lambda: len(slack.bot_messages(im)) == 2)
        texts = [m.text for m in slack.bot_messages(im)]
        assert texts == ["dm: one ()", "dm: two (dm-1)"]
        assert all(m.thread_ts is None for m in slack.bot_messages(im))


async def test_two_threads_at_once_are_two_conversations(tmp_path: Path, receiving: str) -> None:
    profile = agent(tmp_path, 'sleep 0.5\necho "AGENT_SESSION:$$"\necho "re: $AGENT_MESSAGE"\n')
    async with slack_bridge(tmp_path, profile, receiving) as (slack, d):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        one = slack.mention(general, ann, "one")
        two = slack.mention(general, ann, "two")
        await slack.until(
            lambda: slack.bot_messages(general, one.ts) and slack.bot_messages(general, two.ts)
        )
        assert slack.bot_messages(general, one.ts)[0].text == "re: one"
        assert slack.bot_messages(general, two.ts)[0].text == "re: two"
        assert len(await d.store.conversations(channel="slack")) == 2


async def test_a_long_reply_is_split_with_its_code_fences_balanced(
    tmp_path: Path, receiving: str
) -> None:
    code = "\n".join(f"line_{i} = {i}" for i in range(700))
    (tmp_path / "reply.txt").write_text(f"Here:\n```python\n{code}\n```\nDone.")
    profile = agent(tmp_path, f'cat "{tmp_path / "reply.txt"}"\n')
    async with slack_bridge(tmp_path, profile, receiving) as (slack, _):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        asked = slack.mention(general, ann, "code please")
        await slack.until(
            lambda: any("Done." in m.text for m in slack.bot_messages(general, asked.ts))
        )
        shown = [m.text for m in slack.bot_messages(general, asked.ts)]
        assert len(shown) >= 3 and all(len(t) <= 4000 for t in shown)
        assert all(fences_balanced(t) for t in shown)
        assert all(f"line_{i} = {i}" in "".join(shown) for i in range(700))


async def test_a_rate_limit_storm_still_delivers_the_whole_reply(
    tmp_path: Path, receiving: str
) -> None:
    long = " ".join(f"w{i}" for i in range(1200))  # more than one 4,000-character message
    profile = agent(tmp_path, f'echo "{long}"\n')
    async with slack_bridge(tmp_path, profile, receiving) as (slack, _):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        slack.rate_limit(times=4, retry_after=1)
        asked = slack.mention(general, ann, "go")
        await slack.until(
            lambda: "w1199" in "".join(m.text for m in slack.bot_messages(general, asked.ts)),
            timeout=30,
        )
        text = " ".join(m.text for m in slack.bot_messages(general, asked.ts))
        assert text.split() == long.split()
        assert [c for c in slack.calls() if c.status == 429]


async def test_approval_buttons_work_for_the_owner_only(tmp_path: Path, receiving: str) -> None:
    async with slack_bridge(tmp_path, ASKER, receiving) as (slack, _):
        ann = slack.user("Ann", id=ANN)
        bob = slack.user("Bob")
        general = slack.channel("general")
        asked = slack.mention(general, ann, "go")
        card = await slack.until(
            lambda: next((m for m in slack.bot_messages(general, asked.ts) if m.buttons), None)
        )
        assert "Bash" in card.shown and '"n": 1' in card.shown and len(card.buttons) == 3
        slack.press(card, bob, "Allow once")
        await slack.until(lambda: slack.ephemerals)
        assert slack.ephemerals[-1]["user"] == bob.id
        assert "Only the person who asked" in slack.ephemerals[-1]["text"]
        slack.press(card, ann, "Allow once")
        await slack.until(
            lambda: any("allow=True" in m.text for m in slack.bot_messages(general, asked.ts))
        )
        shown = slack.find(general.id, card.ts)
        assert shown is not None and shown.text.startswith("Allowed: Bash (answered by ann)")
        assert not shown.buttons


async def test_a_stranger_is_given_a_code_and_answered_once_approved(
    tmp_path: Path, receiving: str
) -> None:
    profile = agent(tmp_path, 'echo "hi $AGENT_MESSAGE"\n')
    async with slack_bridge(tmp_path, profile, receiving) as (slack, d):
        eve = slack.user("Eve")
        slack.dm(eve, "let me in")
        im = slack.im(eve)
        (note,) = await slack.until(lambda: slack.bot_messages(im))
        assert "pairing code is" in note.text
        code = note.text.split("code is ")[1].split()[0]
        assert await d.store.decide_pairing(code, approve=True, by="root") is not None
        slack.dm(eve, "please")
        await slack.until(lambda: len(slack.bot_messages(im)) == 2)
        assert slack.bot_messages(im)[-1].text == "hi please"
        assert not slack.statuses, "no thinking status at a DM's top level"


async def test_commands_are_words_said_to_the_bot(tmp_path: Path, receiving: str) -> None:
    profile = agent(tmp_path, 'echo "agent got: $AGENT_MESSAGE"\n')
    async with slack_bridge(tmp_path, profile, receiving) as (slack, _):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        asked = slack.mention(general, ann, "whoami")
        (said,) = await slack.until(lambda: slack.bot_messages(general, asked.ts))
        assert f"Your slack id is {ANN}" in said.text
        slack.say(general, ann, "status", thread=asked.ts)
        await slack.until(lambda: len(slack.bot_messages(general, asked.ts)) == 2)
        assert "Agent: test" in slack.bot_messages(general, asked.ts)[-1].text
        slack.say(general, ann, "help me with status", thread=asked.ts)
        await slack.until(lambda: len(slack.bot_messages(general, asked.ts)) == 3)
        assert slack.bot_messages(general, asked.ts)[-1].text == "agent got: help me with status"


async def test_a_retried_event_is_not_answered_twice(tmp_path: Path) -> None:
    profile = agent(tmp_path, 'echo "once: $AGENT_MESSAGE"\n')
    async with slack_bridge(tmp_path, profile, "socket", ack_timeout=0.3) as (slack, _):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        # The acknowledgements of both events of a mention (app_mention and
        # message) are lost: Slack sends them again with retry_attempt 1.
        slack.lose_acks = 2
        asked = slack.mention(general, ann, "status")
        await slack.until(lambda: [e.retry_attempt for e in slack.envelopes if e.acked] == [1, 1])
        slack.lose_acks = 2
        again = slack.mention(general, ann, "hi")
        await slack.until(lambda: len([e for e in slack.envelopes if e.acked]) == 4)
        await slack.until(lambda: slack.bot_messages(general, again.ts))
        assert len(slack.bot_messages(general, asked.ts)) == 1
        assert [m.text for m in slack.bot_messages(general, again.ts)] == ["once: hi"]


class Failing:
    """The channel worker, failing its first messages as ``errors`` says."""

    def __init__(self, inbox: Inbox, errors: list[Exception]) -> None:
        self.inbox, self.errors = inbox, errors

    async def message(self, incoming: Incoming) -> None:
        if self.errors:
            raise self.errors.pop(0)
        await self.inbox.message(incoming)

    async def press(self, press: Press) -> str:
        return await self.inbox.press(press)

    async def follows(self, thread: str) -> bool:
        return await self.inbox.follows(thread)


async def test_an_event_not_taken_is_not_confirmed_and_comes_again(
    tmp_path: Path, receiving: str
) -> None:
    profile = agent(tmp_path, 'echo "got: $AGENT_MESSAGE"\n')
    errors: list[Exception] = [RuntimeError("the log is full"), Closing("draining")]
    wrap = lambda inbox: Failing(inbox, errors)  # noqa: E731
    async with slack_bridge(tmp_path, profile, receiving, wrap=wrap, ack_timeout=0.5) as (
        slack,
        _,
    ):
        ann = slack.user("Ann", id=ANN)
        slack.dm(ann, "hello")
        im = slack.im(ann)
        (said,) = await slack.until(lambda: slack.bot_messages(im))
        assert said.text == "got: hello"
        (env,) = slack.envelopes
        assert env.acked and env.retry_attempt == 2, "refused twice, confirmed the third time"
        if receiving == "events":
            assert [c.status for c in slack.hook_calls] == [500, 503, 200]


async def test_a_shared_file_reaches_the_agent_without_the_token(
    tmp_path: Path, receiving: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    profile = agent(tmp_path, 'echo "files: $AGENT_ATTACHMENTS"\nenv > "$0.env"\n')
    async with slack_bridge(tmp_path, profile, receiving) as (slack, _):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        shared = slack.share_file(general, ann, "notes.txt", b"secret notes", text="read this")
        (said,) = await slack.until(lambda: slack.bot_messages(general, shared.ts))
        assert "notes.txt" in said.text and "file://" in said.text
        path = said.text.split('"url": "file://')[1].split('"')[0]
        assert Path(path).read_bytes() == b"secret notes"
        env = (tmp_path / "agent.sh.env").read_text()
        for secret in (slack.bot_token, slack.app_token, SECRET):
            assert secret not in env and secret not in said.text
            assert secret not in caplog.text


async def test_no_streaming_or_an_expired_stream_falls_back_to_edits(tmp_path: Path) -> None:
    script = """
    for i in 1 2 3 4; do echo "AGENT_PARTIAL:\\"part $i. \\""; sleep 0.2; done
    echo "final answer"
    """
    async with slack_bridge(tmp_path, agent(tmp_path, script), "socket", streaming=False) as (
        slack,
        _,
    ):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        asked = slack.mention(general, ann, "go")
        await slack.until(
            lambda: [m.text for m in slack.bot_messages(general, asked.ts)] == ["final answer"]
        )
        assert slack.bot_messages(general, asked.ts)[0].edits >= 1
    async with slack_bridge(tmp_path, agent(tmp_path, script), "socket") as (slack, _):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        asked = slack.mention(general, ann, "go")
        await slack.until(lambda: slack.calls("chat.appendStream"))
        slack.expire_streams()
        await slack.until(
            lambda: [m.text for m in slack.bot_messages(general, asked.ts)] == ["final answer"]
        )
        assert slack.calls("chat.update")


async def test_garbage_payloads_are_acknowledged_and_ignored(tmp_path: Path) -> None:
    profile = agent(tmp_path, 'echo "fine: $AGENT_MESSAGE"\n')
    async with slack_bridge(tmp_path, profile, "socket") as (slack, _):
        ann = slack.user("Ann", id=ANN)
        for junk in ("text", None, [], {"type": "message"}, {"type": "message", "user": 1}):
            slack.raw_event(junk)
        slack.raw_event(
            {"type": "message", "user": ANN, "channel": "C404", "ts": "1.0", "text": "x"}
        )
        slack.raw_envelope("interactive", {"type": "block_actions", "actions": "x"})
        slack.raw_envelope("interactive", {"type": "block_actions", **_press_to_nowhere(ann.id)})
        slack.raw_envelope("slash_commands", {"command": "/x"})
        await slack.until(lambda: not slack.unacked())
        slack.dm(ann, "still there?")
        im = slack.im(ann)
        (said,) = await slack.until(lambda: slack.bot_messages(im))
        assert said.text == "fine: still there?"


def _press_to_nowhere(user: str) -> dict[str, object]:
    return {
        "user": {"id": user},
        "container": {"channel_id": "C404", "message_ts": "1.0"},
        "actions": [{"action_id": "x", "value": "approve:notanumber:once"}],
    }


async def test_a_final_reply_shorter_than_what_streamed_leaves_no_preview(tmp_path: Path) -> None:
    words = " ".join(f"w{i}" for i in range(900))  # over 4,000 characters: a post, a stream
    profile = agent(tmp_path, f'echo "AGENT_PARTIAL:\\"{words}\\""\nsleep 0.5\necho "short"\n')
    async with slack_bridge(tmp_path, profile, "socket") as (slack, _):
        ann = slack.user("Ann", id=ANN)
        general = slack.channel("general")
        asked = slack.mention(general, ann, "go")
        await slack.until(lambda: slack.calls("chat.startStream"), timeout=15)
        await slack.until(
            lambda: [m.text for m in slack.bot_messages(general, asked.ts)] == ["short"]
        )
