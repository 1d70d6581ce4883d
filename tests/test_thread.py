"""A bot's handlers and the Thread handle (bridge.channels.handlers,
bridge.channels.thread), driven through the real channel worker, dispatcher,
delivery worker and store, on the in-memory platform of the test kit that
bot authors get (bridge.channels.testing)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from bridge.channels import reply_plan as rp
from bridge.channels.bot import Bot, Message
from bridge.channels.handlers import SORRY
from bridge.channels.platform import Capabilities, Press
from bridge.channels.testing import BotChat, try_bot
from bridge.channels.thread import Thread
from bridge.store.base import Store
from bridge.store.errors import StateError
from bridge.store.records import MESSAGE, MESSAGE_HANDLED
from bridge.store.sqlite import SQLiteStore
from bridge.turn.profile import Profile

pytestmark = pytest.mark.anyio
USERS = {"42": ("ann", False), "1": ("root", True)}
ECHO = Profile(command="/bin/sh", args=["-c", 'echo "got $AGENT_MESSAGE"'])
FAST = rp.Limits(
    max_length=80, edit_interval=0.01, send_interval=0.0, first_chars=1, first_delay=0.0
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def rig(
    bot: Bot,
    profile: Profile = ECHO,
    *,
    capabilities: Capabilities | None = None,
    store: Store | None = None,
) -> AbstractAsyncContextManager[BotChat]:
    """The bridge around a bot, from the test kit users get (bridge.channels.testing)."""
    return try_bot(bot, profile, users=USERS, capabilities=capabilities, limits=FAST, store=store)


async def say(r: BotChat, text: str, user: str = "42", **where: Any) -> None:
    """Ann (unless ``user``) writes ``text``."""
    await r.say(text, user=user, **where)


async def until(check: Callable[[], Any]) -> None:
    with anyio.fail_after(15):
        while not check():
            await anyio.sleep(0.02)


# --- choosing and keeping ---------------------------------------------------------------


async def test_a_command_is_handled_kept_in_the_log_and_never_run_twice() -> None:
    bot = Bot()
    calls: list[Message] = []

    @bot.command("deploy", help="ship a branch")
    async def deploy(thread: Thread, message: Message) -> None:
        calls.append(message)
        await thread.post(f"deploying {message.args}")

    async with rig(bot) as r:
        await say(r, "/deploy main", platform_id="upd-7")
        await say(r, "/deploy main", platform_id="upd-7")  # redelivered by the platform
        await r.settle()
        log = await r.log()
        await say(r, "/help")
    assert [(m.command, m.args, m.user.name) for m in calls] == [("deploy", "main", "ann")]
    assert calls[0].id == log[0].id
    assert [e.type for e in log] == [MESSAGE_HANDLED], "kept, and no turn ran"
    assert log[0].data["platform_id"] == "upd-7"
    assert "deploying main" in r.platform.texts("chat")
    assert "/deploy - ship a branch" in r.platform.said()


async def test_what_no_handler_takes_goes_to_the_agent() -> None:
    bot = Bot()

    @bot.on_message(pattern="^!")
    async def bang(thread: Thread, message: Message) -> None:
        await thread.post("bang")

    async with rig(bot) as r:
        await say(r, "hello")
        await until(lambda: "got hello" in r.platform.texts("chat"))
        await r.settle()
        log = await r.log()
    assert [e.type for e in log if e.type.startswith("message")] == [MESSAGE]
    assert "bang" not in r.platform.texts("chat")


async def test_groups_mentions_and_subscriptions() -> None:
    bot = Bot()
    seen: list[tuple[str, str]] = []

    @bot.on_mention
    async def mention(thread: Thread, message: Message) -> None:
        seen.append(("mention", message.text))
        if message.text == "@bot follow":
            await thread.subscribe()
        elif message.text == "@bot stop":
            await thread.unsubscribe()
        await thread.post(f"subscribed: {await thread.is_subscribed()}")

    @bot.on_message
    async def chatter(thread: Thread, message: Message) -> None:
        seen.append(("message", message.text))

    async with rig(bot) as r:
        group = {"private": False, "thread": "g1"}
        await say(r, "lunch?", **group)  # type: ignore[arg-type]
        await say(r, "@bot follow", addressed=True, **group)  # type: ignore[arg-type]
        await r.settle()
        await say(r, "lunch now?", **group)  # type: ignore[arg-type]
        await say(r, "who's in", user="99", **group)  # type: ignore[arg-type] # a stranger
        await r.settle()
        await say(r, "@bot stop", addressed=True, **group)  # type: ignore[arg-type]
        await r.settle()
        await say(r, "still there?", **group)  # type: ignore[arg-type]
        await r.settle()
        texts = r.platform.texts("g1")
    assert seen == [
        ("mention", "@bot follow"),
        ("message", "lunch now?"),
        ("mention", "@bot stop"),
    ]
    assert texts == ["subscribed: True", "subscribed: False"], "the stranger is not told anything"


# --- the agent ---------------------------------------------------------------------------


async def test_run_agent_streams_into_the_thread_and_returns_the_reply() -> None:
    bot = Bot()
    replies: list[Any] = []

    @bot.on_message
    async def wrap(thread: Thread, message: Message) -> None:
        replies.append(await thread.run_agent(context="Be brief."))
        replies.append(await thread.run_agent("second", transcript=True))

    async with rig(bot) as r:
        await say(r, "what is up")
        await r.settle()
        log = await r.log()
        said = await Thread(
            r.runner.services,
            await r.dispatcher.store.get(log[0].conversation),  # type: ignore[arg-type]
        ).get_messages()
    first, second = replies
    assert (first.ok, first.status, first.text) == (True, "ok", "got Be brief.\n\nwhat is up")
    assert first.turn == 1 and second.turn == 2
    assert second.text.startswith("got The conversation so far:\n[ann] Be brief.")
    assert second.text.endswith("\n\nsecond")
    assert "got Be brief.\n\nwhat is up" in r.platform.texts("chat"), (
        "the delivery worker showed it"
    )
    prompts = [e for e in log if e.type == MESSAGE]
    assert [p.data["via"] for p in prompts] == ["handler", "handler"]
    assert [p.data["from_user"] for p in prompts] == ["ann", "ann"]
    assert [(s.role, s.by) for s in said] == [("person", "ann"), ("agent", ""), ("agent", "")]
    assert said[0].text == "what is up"


async def test_run_agent_refused_by_the_busy_policy_says_so() -> None:
    slow = Profile(command="/bin/sh", args=["-c", "sleep 3; echo done"], busy_policy="reject")
    bot = Bot()
    replies: list[Any] = []

    @bot.command("ask")
    async def ask(thread: Thread, message: Message) -> None:
        replies.append(await thread.run_agent(message.args))

    async with rig(bot, slow) as r:
        await say(r, "/ask one")
        await until(lambda: r.dispatcher.running_turns)
        await say(r, "/ask two")
        await until(lambda: len(replies) == 1)
        await say(r, "/cancel")
        await r.settle()
    refused, cancelled = replies
    assert (refused.ok, refused.status, refused.turn) == (False, "refused", 0)
    assert "busy" in refused.error
    assert (cancelled.ok, cancelled.status) == (False, "cancelled")


# --- questions --------------------------------------------------------------------------


async def test_await_choice_with_buttons_answers_only_the_asker_or_an_admin() -> None:
    bot = Bot()
    chosen: list[str | None] = []

    @bot.command("deploy")
    async def deploy(thread: Thread, message: Message) -> None:
        chosen.append(await thread.await_choice("Deploy main?", ["Yes", "No"]))

    async with rig(bot) as r:
        await say(r, "/deploy")
        await until(lambda: any(b for _, _, b in r.platform.shown.values()))
        mid, (_, question, buttons) = next((k, v) for k, v in r.platform.shown.items() if v[2])
        assert question == "Deploy main?" and [b.label for b in buttons] == ["Yes", "No"]
        stranger = await r.worker.press(Press("chat", "99", "Eve", buttons[0].data))
        assert stranger == "Only people the bridge lets in can answer."
        assert await r.worker.press(Press("chat", "42", "Ann", buttons[1].data)) == "You chose: No"
        await r.settle()
        assert await r.worker.press(Press("chat", "1", "Root", buttons[0].data)) == (
            "This question is closed."
        )
    assert chosen == ["No"]
    assert r.platform.shown[mid][1:] == ("Deploy main?\n→ No (answered by ann)", ())


async def test_await_choice_by_a_numbered_reply_where_there_are_no_buttons() -> None:
    bot = Bot()
    chosen: list[str | None] = []

    @bot.on_mention(pattern="release")
    async def release(thread: Thread, message: Message) -> None:
        chosen.append(await thread.await_choice("Which?", ["beta", "stable"]))

    caps = Capabilities(max_text=4096, buttons=False)
    async with rig(bot, capabilities=caps) as r:
        group = {"private": False, "thread": "g1"}
        await say(r, "@bot release", addressed=True, **group)  # type: ignore[arg-type]
        await until(lambda: r.platform.texts("g1"))
        assert r.platform.texts("g1") == ["Which?\n1. beta\n2. stable\nReply with a number."]
        await say(r, "2", user="1", **group)  # type: ignore[arg-type] # an admin, not addressed
        await r.settle()
        log = await r.log("g1")
    assert chosen == ["stable"]
    assert [e.type for e in log] == [MESSAGE_HANDLED, MESSAGE_HANDLED], "no turn ran"
    assert r.platform.texts("g1") == ["Which?\n→ stable (answered by root)"]


async def test_await_choice_times_out_to_its_default() -> None:
    bot = Bot()
    chosen: list[str | None] = []

    @bot.on_message
    async def ask(thread: Thread, message: Message) -> None:
        chosen.append(await thread.await_choice("Go?", ["go", "stop"], timeout=0.2, default="stop"))
        with pytest.raises(ValueError, match="not one of the options"):
            await thread.await_choice("Go?", ["go"], default="maybe")
        with pytest.raises(ValueError, match="a list of options"):
            await thread.await_choice("Go?", "go")

    async with rig(bot) as r:
        await say(r, "hi")
        await r.settle()
    assert chosen == ["stop"]
    assert r.platform.texts("chat") == ["Go?\n→ no answer in time; went with stop"]


# --- posting ----------------------------------------------------------------------------


async def test_post_stream_update_delete_and_files() -> None:
    bot = Bot()
    results: dict[str, Any] = {}

    async def words() -> AsyncIterator[str]:
        for w in ("one ", "two ", "three"):
            yield w
            await anyio.sleep(0.03)

    @bot.on_message
    async def show(thread: Thread, message: Message) -> None:
        long = "\n\n".join(f"paragraph {i} " + "x" * 40 for i in range(4))
        results["long"] = await thread.post(long)
        results["stream"] = await thread.stream(words())
        results["update"] = await thread.update(results["stream"].id, "changed")
        results["same"] = await thread.update(results["stream"].id, "changed")
        results["too long"] = await thread.update(results["stream"].id, "y" * 5000)
        results["delete"] = await thread.delete(results["long"].ids[0])
        path = Path(message.text)
        results["file"] = await thread.post_file(path, caption="the notes")
        results["missing"] = await thread.post_file(path.with_name("nope"))

    async with rig(bot) as r:
        notes = Path(__file__).parent / "data" / "notes.txt"
        await say(r, str(notes))
        await r.settle()
    long, stream = results["long"], results["stream"]
    assert long.ok and len(long.ids) > 1
    assert all(len(text) <= FAST.max_length for _, text in r.platform.posts)
    assert stream.ok and len(stream.ids) == 1
    assert results["update"].ok and results["same"].ok
    assert not results["too long"].ok and "longer than" in results["too long"].error
    assert results["delete"].ok and long.ids[0] not in r.platform.shown
    assert r.platform.shown[stream.id][1] == "changed"
    assert results["file"].ok and ("file", "chat", "notes.txt: some notes\n (the notes)") in (
        r.platform.calls
    )
    assert not results["missing"].ok and "is not a file" in results["missing"].error


async def test_a_platform_that_cannot_edit_or_send_files_says_so() -> None:
    bot = Bot()
    results: list[Any] = []

    @bot.on_message
    async def show(thread: Thread, message: Message) -> None:
        results.append(await thread.update("1", "x"))
        results.append(await thread.delete("1"))
        results.append(await thread.post_file(__file__))
        results.append(await thread.lookup_user("99"))

    caps = Capabilities(max_text=4096, edit=False, delete=False, files=False)
    async with rig(bot, capabilities=caps) as r:
        await say(r, "hi")
        await r.settle()
    update, delete, file, nobody = results
    assert (update.ok, update.error) == (False, "memory cannot edit messages")
    assert (delete.ok, delete.error) == (False, "memory cannot delete messages")
    assert (file.ok, file.error) == (False, "memory cannot send files")
    assert nobody is None


async def test_a_rate_limited_post_waits_and_arrives() -> None:
    bot = Bot()
    sent: list[Any] = []

    @bot.on_message
    async def show(thread: Thread, message: Message) -> None:
        sent.append(await thread.post("patience"))

    async with rig(bot) as r:
        r.platform.rate_limits = [0.05, 0.05]
        await say(r, "hi")
        await r.settle()
    assert sent[0].ok and r.platform.texts("chat") == ["patience"]


# --- state, people, failures -----------------------------------------------------------


class Deploys(BaseModel):
    branch: str = "main"
    count: int = 0


async def test_state_is_validated_by_the_bots_model_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    bot = Bot(state=Deploys)
    seen: list[Any] = []

    @bot.on_message
    async def count(thread: Thread, message: Message) -> None:
        state = await thread.state() or Deploys()
        seen.append(state)
        await thread.set_state(Deploys(branch=state.branch, count=state.count + 1))
        with pytest.raises(StateError, match="invalid state for Deploys: count"):
            await thread.set_state({"count": "many"})

    for n in range(2):  # the second bridge reads what the first stored
        async with rig(bot, store=SQLiteStore(tmp_path / "s.db")) as r:
            await say(r, "hi", platform_id=f"update-{n}")
            await r.settle()
    assert seen == [Deploys(), Deploys(count=1)]


async def test_lookup_user_knows_config_users_and_paired_people() -> None:
    bot = Bot()
    found: list[Any] = []

    @bot.on_message
    async def look(thread: Thread, message: Message) -> None:
        for who in ("1", "77", "99"):
            found.append(await thread.lookup_user(who))

    async with rig(bot) as r:
        pairing = await r.dispatcher.store.request_pairing("memory", "77", "Pat")
        assert pairing is not None
        await r.dispatcher.store.decide_pairing(pairing.code, approve=True, by="root")
        await say(r, "hi")
        await r.settle()
    root, pat, nobody = found
    assert (root.name, root.admin, root.known) == ("root", True, True)
    assert (pat.name, pat.known) == ("id:77", True)
    assert nobody is None


async def test_a_failing_handler_is_logged_and_the_person_told_plainly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = Bot()

    @bot.on_message
    async def broken(thread: Thread, message: Message) -> None:
        raise KeyError("secret internals")

    async with rig(bot) as r:
        with caplog.at_level(logging.ERROR, logger="bridge.channels"):
            await say(r, "hi")
            await r.settle()
            await say(r, "again")
            await r.settle()
    assert r.platform.texts("chat") == [SORRY, SORRY]
    assert "secret internals" not in SORRY
    assert "the bot's handler" in caplog.text and "KeyError: 'secret internals'" in caplog.text
