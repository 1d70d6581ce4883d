"""The Discord channel (platform adapter, channel worker, delivery) against
the fake Discord on loopback (REST, gateway, CDN), with the real discord.py
in between."""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from chat_kit import ASKER
from fake_discord import Channel, FakeDiscord

from bridge.channels import reply_plan as rp
from bridge.channels.commands import COMMANDS
from bridge.channels.delivery import Delivery
from bridge.channels.discord_keys import last_seen
from bridge.channels.discord_platform import DiscordPlatform
from bridge.channels.errors import PlatformError, Unreachable
from bridge.channels.inbound import ChannelAccess, ChannelWorker
from bridge.channels.platform import Button
from bridge.conversations.dispatcher import Dispatcher
from bridge.store.base import Store
from bridge.store.memory import MemoryStore
from bridge.store.records import TURN_COMPLETED, Route
from bridge.turn.profile import Profile

pytestmark = pytest.mark.anyio
TOKEN = "MTAxNTk.Gfake1.discord-test_token-value"
ROUTE = Route("bundled:test", "/", "test")
ANN_ID = 80351110224678912


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


#: Discord's limits, with the test's pace: no waiting between edits.
QUICK = replace(rp.DISCORD, edit_interval=0.05, send_interval=0.0, first_chars=1, first_delay=0)


def agent(tmp: Path, script: str) -> Profile:
    path = tmp / "agent.sh"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    return Profile(command="/bin/sh", args=[str(path)], timeout_secs=20)


@asynccontextmanager
async def channel(
    dc: FakeDiscord,
    d: Dispatcher,
    tmp: Path,
    *,
    policy: str = "pairing",
    admins: tuple[int, ...] = (),
    threads: bool = True,
    limits: rp.Limits = QUICK,
) -> AsyncIterator[DiscordPlatform]:
    """The Discord channel of a bridge on ``d``: platform, worker, delivery."""
    platform = DiscordPlatform(
        TOKEN,
        api_base=dc.api_base,
        files_dir=tmp / "files",
        threads=threads,
        commands={name: what for name, what in COMMANDS.items()},
        last_seen=lambda: last_seen(d.store),
        ready_timeout=0.05,
    )
    await platform.start()
    users = {str(ANN_ID): ("ann", False), **{str(a): (f"admin{a}", True) for a in admins}}
    rules = ChannelAccess(policy=policy, users=users)  # type: ignore[arg-type]
    worker = ChannelWorker(platform, d, ROUTE, rules)
    before = dc.identifies
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(platform.run, worker)
        tasks.start_soon(Delivery(platform, d, limits).run)
        await dc.until(lambda: dc.identifies > before and dc.events)
        yield platform
        tasks.cancel_scope.cancel()
    await platform.close()


@asynccontextmanager
async def running(
    dc: FakeDiscord, store: Store, profile: Profile, tmp: Path, **options: Any
) -> AsyncIterator[Dispatcher]:
    """One bridge run on ``store``."""
    async with Dispatcher(store, {ROUTE: profile}) as d, channel(dc, d, tmp, **options):
        yield d


@asynccontextmanager
async def discord_bridge(
    tmp: Path, profile: Profile, **options: Any
) -> AsyncIterator[tuple[FakeDiscord, Dispatcher]]:
    with FakeDiscord(token=TOKEN) as dc:
        async with MemoryStore() as store, running(dc, store, profile, tmp, **options) as d:
            yield dc, d


async def settled(store: Store) -> None:
    """Until the channel has acknowledged everything in the log (a bridge
    stopped before is one a real kill -9 is tested with, in the serve tests)."""
    with anyio.fail_after(10):
        while True:
            done = True
            for conv in await store.conversations(channel="discord"):
                after = await store.acked("discord", conv.id)
                later = await store.read(conv.id, after)
                done = done and not any(e.type == TURN_COMPLETED for e in later)
            if done:
                return
            await anyio.sleep(0.02)


def text_of(dc: FakeDiscord, where: Channel) -> list[str]:
    return [m.content for m in dc.bot_messages(where)]


async def test_a_mention_starts_a_thread_and_the_thread_resumes_the_session(
    tmp_path: Path,
) -> None:
    go = tmp_path / "go"
    profile = agent(
        tmp_path,
        f"""
        for i in 1 2 3; do echo "AGENT_PARTIAL:\\"step $i. \\""; done
        while [ ! -e {go} ]; do sleep 0.05; done  # until the test saw the preview
        echo "AGENT_SESSION:s-1"
        echo "all done: $AGENT_MESSAGE (resumed '$AGENT_SESSION_ID')"
        """,
    )
    with FakeDiscord(token=TOKEN) as dc:
        team = dc.guild("Team")
        general = dc.text_channel(team, "general")
        ann = dc.user("ann", id=ANN_ID)
        async with MemoryStore() as store, running(dc, store, profile, tmp_path):
            asked = dc.mention(general, ann, "hello there")
            (thread,) = await dc.until(lambda: dc.threads_of(general))
            assert thread.id == asked.id and thread.name == "hello there"
            await dc.until(lambda: text_of(dc, thread) == ["step 1. step 2. step 3. "])
            go.touch()
            await dc.until(lambda: any("all done" in t for t in text_of(dc, thread)))
            assert text_of(dc, thread) == ["all done: hello there (resumed '')"]
            assert dc.bot_messages(thread)[0].edits, "the preview became the reply by editing"
            dc.send_user_message(thread, ann, "again")  # no mention needed in the bot's thread
            await dc.until(lambda: "all done: again" in text_of(dc, thread)[-1])
            assert text_of(dc, thread)[-1] == "all done: again (resumed 's-1')"
        assert not dc.bot_messages(general), "nothing is said in the channel itself"


async def test_two_threads_at_once_are_two_conversations(tmp_path: Path) -> None:
    profile = agent(
        tmp_path,
        """
        echo "AGENT_SESSION:s-$AGENT_MESSAGE"
        sleep 0.3
        echo "$AGENT_MESSAGE after '$AGENT_SESSION_ID'"
        """,
    )
    async with discord_bridge(tmp_path, profile) as (dc, d):
        general = dc.text_channel(dc.guild("Team"), "general")
        ann = dc.user("ann", id=ANN_ID)
        asked = [dc.mention(general, ann, "a").id, dc.mention(general, ann, "b").id]
        await dc.until(lambda: len(dc.threads_of(general)) == 2)
        # Each thread is opened from its mention (same id), whichever reply comes first.
        first, second = sorted(dc.threads_of(general), key=lambda t: asked.index(t.id))
        await dc.until(lambda: text_of(dc, first) and text_of(dc, second))
        assert text_of(dc, first) == ["a after ''"] and text_of(dc, second) == ["b after ''"]
        dc.send_user_message(second, ann, "again")
        await dc.until(lambda: len(text_of(dc, second)) == 2)
        assert text_of(dc, second)[-1] == "again after 's-b'", "each thread resumes its own"
        assert len(await d.store.conversations(channel="discord")) == 2


async def test_a_long_reply_is_split_at_2000_with_code_fences_balanced(tmp_path: Path) -> None:
    code = "\n".join(f"line {i} of the code" for i in range(180))
    (tmp_path / "reply.txt").write_text(f"Here it is:\n```python\n{code}\n```\nDone.\n")
    profile = agent(tmp_path, f"cat {tmp_path / 'reply.txt'}\n")
    async with discord_bridge(tmp_path, profile) as (dc, _):
        ann = dc.user("ann", id=ANN_ID)
        dm = dc.dm(ann)
        dc.send_user_message(dm, ann, "show me")
        shown = await dc.until(
            lambda: (m := text_of(dc, dm)) and m[-1].rstrip().endswith("Done.") and m
        )
    assert len(shown) >= 2 and all(len(t) <= 2000 for t in shown)
    assert all(t.count("```") % 2 == 0 for t in shown), "every message closes its fences"
    lines = [ln for t in shown for ln in t.splitlines() if ln.startswith("line ")]
    assert lines == code.splitlines(), "the code arrives whole and in order"


async def test_a_rate_limit_storm_still_delivers_the_whole_reply(tmp_path: Path) -> None:
    long = " ".join(f"w{i}" for i in range(700))  # more than one 2,000-character message
    profile = agent(tmp_path, f'echo "{long}"\n')
    async with discord_bridge(tmp_path, profile) as (dc, _):
        ann = dc.user("ann", id=ANN_ID)
        dm = dc.dm(ann)
        post = "POST /channels/{channel_id}/messages"
        # Past discord.py's own retries (5 tries): the plan waits and sends again.
        dc.rate_limit(post, retry_after=0.05, times=8)
        dc.rate_limit("PATCH /channels/{channel_id}/messages/{message_id}", retry_after=0.05)
        dc.send_user_message(dm, ann, "go")
        shown = await dc.until(
            lambda: (m := text_of(dc, dm)) and m[-1].endswith("w699") and m, timeout=30
        )
        assert [c.status for c in dc.calls(post)].count(429) == 8
    assert all(len(t) <= 2000 for t in shown)
    assert " ".join(t.strip() for t in shown) == long


async def test_approval_buttons_answer_the_owner_and_admins_only_and_outlive_a_restart(
    tmp_path: Path,
) -> None:
    with FakeDiscord(token=TOKEN) as dc:
        general = dc.text_channel(dc.guild("Team"), "general")
        ann, bob = dc.user("ann", id=ANN_ID), dc.user("bob")
        async with MemoryStore() as store, Dispatcher(store, {ROUTE: ASKER}) as d:
            async with channel(dc, d, tmp_path, policy="open"):
                dc.mention(general, ann, "go")
                (thread,) = await dc.until(lambda: dc.threads_of(general))
                card = await dc.until(
                    lambda: next((m for m in dc.bot_messages(thread) if m.buttons), None)
                )
                assert "Bash" in card.content and len(card.buttons) == 3
                assert card.custom_ids[0].startswith("approve:")
                press = dc.press_button(thread, bob, card.id, card.custom_ids[0])
                answer = await dc.until(lambda: (a := dc.answer(press)) and a.content and a)
                assert "Only the person who asked" in answer.content and answer.ephemeral
            # The bridge's client restarts; the card stays, and its buttons still work.
            async with channel(dc, d, tmp_path, policy="open"):
                press = dc.press_button(thread, ann, card.id, card.custom_ids[0])
                answer = await dc.until(lambda: (a := dc.answer(press)) and a.content and a)
                assert answer.content == "Allowed." and answer.type == 5
                await dc.until(lambda: any("allow=True" in t for t in text_of(dc, thread)))
                shown = next(m for m in dc.bot_messages(thread) if m.id == card.id)
                assert shown.content.startswith("Allowed: Bash (answered by ann)")
                assert not shown.buttons


async def test_a_stranger_is_given_a_code_and_answered_once_approved(tmp_path: Path) -> None:
    profile = agent(tmp_path, 'echo "hi $AGENT_MESSAGE"\n')
    async with discord_bridge(tmp_path, profile) as (dc, d):
        eve = dc.user("eve")
        dm = dc.dm(eve)
        dc.send_user_message(dm, eve, "let me in")
        (note,) = await dc.until(lambda: text_of(dc, dm))
        assert "pairing code is" in note
        code = note.split("code is ")[1].split()[0]
        general = dc.text_channel(dc.guild("Team"), "general")
        dc.mention(general, eve, "and here?")
        (thread,) = await dc.until(lambda: dc.threads_of(general))
        (told,) = await dc.until(lambda: text_of(dc, thread))
        assert "private chat" in told, "a stranger in a guild is sent to a DM"
        assert await d.store.decide_pairing(code, approve=True, by="root") is not None
        dc.send_user_message(dm, eve, "please")
        await dc.until(lambda: len(text_of(dc, dm)) == 2)
        assert text_of(dc, dm)[-1] == "hi please"


async def test_the_token_never_reaches_the_logs_or_the_agent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    profile = agent(tmp_path, 'env | grep -c "discord-test_token" || true\n')
    async with discord_bridge(tmp_path, profile) as (dc, _):
        ann = dc.user("ann", id=ANN_ID)
        dm = dc.dm(ann)
        dc.send_user_message(dm, ann, "hi")
        (text,) = await dc.until(lambda: text_of(dc, dm))
    assert text.strip() == "0", "the agent's environment holds no token"
    assert "discord-test_token" not in caplog.text and "MTAxNTk" not in caplog.text


async def test_an_attachment_reaches_the_agent_as_a_local_file(tmp_path: Path) -> None:
    profile = agent(tmp_path, 'echo "$AGENT_ATTACHMENTS"\n')
    async with discord_bridge(tmp_path, profile) as (dc, _):
        ann = dc.user("ann", id=ANN_ID)
        dm = dc.dm(ann)
        dc.send_user_message(
            dm, ann, "what is this?", files=(("cat.png", b"\x89PNG-fake", "image/png"),)
        )
        (text,) = await dc.until(lambda: text_of(dc, dm))
    attached = json.loads(text)
    assert attached[0]["type"] == "image" and attached[0]["name"] == "cat.png"
    assert attached[0]["url"].startswith("file://")
    assert Path(attached[0]["url"].removeprefix("file://")).read_bytes() == b"\x89PNG-fake"


async def test_application_commands_answer_as_the_interaction_response(tmp_path: Path) -> None:
    profile = agent(tmp_path, 'echo "AGENT_SESSION:s-9"; echo "ok $AGENT_MESSAGE"\n')
    async with discord_bridge(tmp_path, profile) as (dc, _):
        assert {c["name"] for c in dc.commands} == set(COMMANDS)
        general = dc.text_channel(dc.guild("Team"), "general")
        ann = dc.user("ann", id=ANN_ID)
        dc.mention(general, ann, "hi")
        (thread,) = await dc.until(lambda: dc.threads_of(general))
        await dc.until(lambda: text_of(dc, thread) == ["ok hi"])
        status = dc.slash(thread, ann, "status")
        shown = await dc.until(lambda: (a := dc.answer(status)) and a.content and a)
        assert "Session: s-9" in shown.content and not shown.ephemeral
        who = dc.slash(general, ann, "whoami")
        shown = await dc.until(lambda: (a := dc.answer(who)) and a.content and a)
        assert str(ANN_ID) in shown.content and shown.ephemeral
        new = dc.slash(general, ann, "new")
        shown = await dc.until(lambda: (a := dc.answer(new)) and a.content and a)
        assert shown.type == 4 and shown.ephemeral and "use it in one" in shown.content
        dc.commands.append({"id": "1", "name": "gone", "description": "an old one"})
        stale = dc.slash(thread, ann, "gone")
        shown = await dc.until(lambda: (a := dc.answer(stale)) and a.content and a)
        assert "not a command of this bot" in shown.content and shown.ephemeral
        dc.send_user_message(thread, ann, "/new")  # typed, it works too
        await dc.until(lambda: "fresh conversation" in text_of(dc, thread)[-1])
        assert len(text_of(dc, thread)) == 2, "command answers are not posted twice"


async def test_what_was_written_while_the_bridge_was_away_is_read_back(tmp_path: Path) -> None:
    profile = agent(tmp_path, 'echo "got $AGENT_MESSAGE"\n')
    with FakeDiscord(token=TOKEN) as dc:
        general = dc.text_channel(dc.guild("Team"), "general")
        ann = dc.user("ann", id=ANN_ID)
        async with MemoryStore() as store:
            async with running(dc, store, profile, tmp_path):
                dc.mention(general, ann, "one")
                (thread,) = await dc.until(lambda: dc.threads_of(general))
                await dc.until(lambda: text_of(dc, thread) == ["got one"])
                await settled(store)
            # The bridge is down: the gateway sends nothing to anyone.
            dc.send_user_message(thread, ann, "two")
            dc.send_user_message(thread, ann, "three")
            async with running(dc, store, profile, tmp_path):
                await dc.until(lambda: len(text_of(dc, thread)) == 3)
                dc.send_user_message(thread, ann, "four")
                await dc.until(lambda: len(text_of(dc, thread)) == 4)
    assert text_of(dc, thread) == ["got one", "got two", "got three", "got four"]


async def test_without_threads_a_channel_is_answered_in_place(tmp_path: Path) -> None:
    profile = agent(tmp_path, 'echo "seen: $AGENT_MESSAGE"\n')
    async with discord_bridge(tmp_path, profile, threads=False) as (dc, _):
        general = dc.text_channel(dc.guild("Team"), "general")
        ann = dc.user("ann", id=ANN_ID)
        dc.send_user_message(general, ann, "just chatting")
        dc.mention(general, ann, "what now?")
        (text,) = await dc.until(lambda: text_of(dc, general))
        assert text == "seen: what now?" and not dc.threads_of(general)


async def test_bots_system_messages_and_foreign_buttons_are_not_taken(tmp_path: Path) -> None:
    profile = agent(tmp_path, 'echo "seen: $AGENT_MESSAGE"\n')
    async with discord_bridge(tmp_path, profile, policy="open") as (dc, d):
        other = dc.user("otherbot")
        object.__setattr__(other, "bot", True)
        ann = dc.user("ann", id=ANN_ID)
        dm = dc.dm(ann)
        dc.send_user_message(dm, other, "I am a bot")
        dc.send_user_message(dm, ann, "")  # a message with nothing in it
        dc.send_user_message(dm, ann, "real")
        await dc.until(lambda: text_of(dc, dm))
        assert text_of(dc, dm) == ["seen: real"]
        press = dc.press_button(dm, ann, dc.bot_messages(dm)[0].id, "nonsense:1")
        shown = await dc.until(lambda: (a := dc.answer(press)) and a.content and a)
        assert shown.content == "This button is not one of mine."
        (conv,) = await d.store.conversations(channel="discord")
        assert conv.key.key == f"dm/{dm.id}"


async def test_a_missing_content_intent_is_told_plainly_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bridge.channels.discord_receive as receive

    monkeypatch.setattr(receive, "RETRY_SECS", 0.05)
    profile = agent(tmp_path, 'echo "seen: $AGENT_MESSAGE"\n')
    with FakeDiscord(token=TOKEN) as dc:
        dc.content_intent = False  # the Developer Portal's switch is off
        ann = dc.user("ann", id=ANN_ID)
        dm = dc.dm(ann)
        async with MemoryStore() as store, Dispatcher(store, {ROUTE: profile}) as d:
            platform = DiscordPlatform(
                TOKEN, api_base=dc.api_base, files_dir=tmp_path, ready_timeout=0.05
            )
            worker = ChannelWorker(platform, d, ROUTE, ChannelAccess(policy="open"))
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(platform.run, worker)
                tasks.start_soon(Delivery(platform, d, QUICK).run)
                await dc.until(lambda: "Message Content Intent" in caplog.text)
                dc.content_intent = True  # switched on: the bridge connects by itself
                await dc.until(lambda: dc.session_id and dc.events)
                dc.send_user_message(dm, ann, "there?")
                await dc.until(lambda: text_of(dc, dm))
                tasks.cancel_scope.cancel()
            await platform.close()
    assert text_of(dc, dm) == ["seen: there?"]
    assert "Traceback" not in caplog.text


async def test_a_dropped_gateway_connection_is_resumed_and_nothing_is_missed(
    tmp_path: Path,
) -> None:
    profile = agent(tmp_path, 'echo "seen: $AGENT_MESSAGE"\n')
    async with discord_bridge(tmp_path, profile) as (dc, _):
        ann = dc.user("ann", id=ANN_ID)
        dm = dc.dm(ann)
        dc.drop_connection()
        dc.send_user_message(dm, ann, "during the drop")
        # discord.py reconnects after a pause of its own choosing (up to
        # seconds, with jitter): the wait allows for a loaded machine.
        await dc.until(lambda: text_of(dc, dm), timeout=60)
        assert text_of(dc, dm) == ["seen: during the drop"] and dc.resumes == 1


async def test_files_edits_deletes_and_names_go_through_the_platform(tmp_path: Path) -> None:
    """What a bot's handlers ask of the platform (Thread.post_file, update,
    delete, lookup_user), against the fake."""
    async with discord_bridge(tmp_path, agent(tmp_path, "echo hi\n")) as (dc, _):
        ann = dc.user("ann", id=ANN_ID, name="Ann Lee")
        dm = dc.dm(ann)
        platform = DiscordPlatform(TOKEN, api_base=dc.api_base, files_dir=tmp_path)
        await platform.start()
        try:
            key = f"dm/{dm.id}"
            report = tmp_path / "report.txt"
            report.write_text("all good\n")
            sent = await platform.send_file(key, report, caption="the report")
            (shown,) = dc.bot_messages(dm)
            assert str(shown.id) == sent and shown.content == "the report"
            assert shown.files[0].filename == "report.txt"
            assert dc.file_bytes(shown.files[0].id) == b"all good\n"
            card = await platform.post(key, "x" * 2500, buttons=(Button("Go", "choice:t:0"),))
            assert len(dc.bot_messages(dm)[-1].content) == 2000, "a long note is cut, not refused"
            await platform.edit(key, card, "done")
            assert dc.bot_messages(dm)[-1].content == "done" and not dc.bot_messages(dm)[-1].buttons
            await platform.delete(key, card)
            await platform.delete(key, card)  # gone already: what was asked
            assert [m.id for m in dc.bot_messages(dm)] == [shown.id]
            assert await platform.lookup_user(str(ANN_ID)) == "Ann Lee"
            assert await platform.lookup_user("42") is None
            assert await platform.lookup_user("not-an-id") is None
            with pytest.raises(Unreachable):
                await platform.post("dm/12345", "to a channel that is not there")
            with pytest.raises(PlatformError, match="cannot read"):
                await platform.send_file(key, tmp_path / "missing.txt")
        finally:
            await platform.close()


async def test_odd_gateway_payloads_are_passed_over_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    profile = agent(tmp_path, 'echo "seen: $AGENT_MESSAGE"\n')
    async with discord_bridge(tmp_path, profile, policy="open") as (dc, d):
        ann = dc.user("ann", id=ANN_ID)
        dm = dc.dm(ann)
        base = dc.message_json(dc.send_user_message(dm, ann, "first"))
        await dc.until(lambda: text_of(dc, dm))
        odd = [
            {**base, "id": str(dc.ids.next()), "type": 7, "content": "joined"},  # a join notice
            {**base, "id": str(dc.ids.next()), "type": 6, "content": "pinned"},  # a pin notice
            # a message in a channel nobody knows (Discord would not, but the fake can)
            {**base, "id": str(dc.ids.next()), "channel_id": "1234", "guild_id": "999"},
            {**base, "id": str(dc.ids.next()), "webhook_id": "55", "content": "a webhook"},
        ]
        for payload in odd:
            dc.dispatch("MESSAGE_CREATE", payload)
        # An interaction of a kind the bot does not use (autocomplete), and a
        # command interaction with no data.
        dc.dispatch("INTERACTION_CREATE", {**_interaction(dc, dm), "type": 4})
        dc.dispatch("INTERACTION_CREATE", {**_interaction(dc, dm), "type": 2, "data": {}})
        dc.send_user_message(dm, ann, "last")
        await dc.until(lambda: len(text_of(dc, dm)) == 2)
        assert text_of(dc, dm) == ["seen: first", "seen: last"]
        assert len(await d.store.conversations(channel="discord")) == 1
    assert "Traceback" not in caplog.text


def _interaction(dc: FakeDiscord, where: Channel) -> dict[str, Any]:
    return {
        "id": str(dc.ids.next()),
        "application_id": str(dc.application_id),
        "channel_id": str(where.id),
        "channel": where.to_api(),
        "token": "t",
        "version": 1,
        "user": dc.bot.to_api(),
        "attachment_size_limit": 1024,
        "data": {"name": "x", "id": "1", "type": 1},
    }
