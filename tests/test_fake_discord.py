"""The fake Discord against the real discord.py: what the channel's tests
build on behaves as Discord's wire does (PLATFORMS.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import discord
import httpx
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route
from fake_discord import FakeDiscord

pytestmark = pytest.mark.anyio
TOKEN = "MTAx.fake.token-value"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Client(discord.Client):
    def __init__(self, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = intents.guild_messages = intents.dm_messages = True
        intents.message_content = bool(options.pop("content", True))
        super().__init__(intents=intents, guild_ready_timeout=0.05, **options)
        self.seen: list[discord.Message] = []
        self.pressed: list[discord.Interaction[Any]] = []

    async def setup_hook(self) -> None:
        _, url, _ = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        self.pressed.append(interaction)


@asynccontextmanager
async def connected(dc: FakeDiscord, **options: Any) -> AsyncIterator[Client]:
    Route.BASE = f"{dc.api_base}/v10"
    client = Client(**options)
    await client.login(TOKEN)
    task = asyncio.create_task(client.connect())
    await dc.until(lambda: dc.identifies)
    await asyncio.to_thread(dc.wait_for, lambda: dc.events)
    while client.user is None or not client.is_ready():
        await asyncio.sleep(0.01)
    try:
        yield client
    finally:
        await client.close()
        task.cancel()


async def test_answers_are_json_exactly_and_a_wrong_token_is_refused() -> None:
    with FakeDiscord(token=TOKEN) as dc:
        async with httpx.AsyncClient(base_url=dc.api_base) as http:
            ok = await http.get("/v10/users/@me", headers={"Authorization": f"Bot {TOKEN}"})
            bad = await http.get("/v10/users/@me", headers={"Authorization": "Bot nope"})
        assert ok.headers["content-type"] == "application/json" and ok.json()["bot"] is True
        assert bad.status_code == 401
        Route.BASE = f"{dc.api_base}/v10"
        client = discord.Client(intents=discord.Intents.none())
        with pytest.raises(discord.LoginFailure):
            await client.login("nope")
        await client.close()


async def test_the_client_waits_out_429s_and_a_storm_reaches_it_as_an_error() -> None:
    with FakeDiscord(token=TOKEN) as dc:
        channel = dc.text_channel(dc.guild())
        async with connected(dc) as client:
            route = "POST /channels/{channel_id}/messages"
            dc.rate_limit(route, retry_after=0.05, times=2)
            sent = await client.get_partial_messageable(channel.id).send("hi")
            assert sent.content == "hi" and [c.status for c in dc.calls(route)] == [429, 429, 200]
            dc.rate_limit(route, retry_after=0.01, times=10)
            with pytest.raises(discord.HTTPException) as caught:
                await client.get_partial_messageable(channel.id).send("again")
            assert caught.value.status == 429


async def test_events_missed_while_away_come_with_a_resume_not_a_new_session() -> None:
    with FakeDiscord(token=TOKEN) as dc:
        general = dc.text_channel(dc.guild())
        ann = dc.user("ann")
        async with connected(dc) as client:
            dc.send_user_message(general, ann, "one")
            dc.drop_connection()
            dc.send_user_message(general, ann, "two")
            deadline = time.monotonic() + 10
            while len(client.seen) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert [m.content for m in client.seen] == ["one", "two"]
            assert dc.resumes == 1 and dc.identifies == 1


async def test_without_the_content_intent_only_mentions_keep_their_text() -> None:
    with FakeDiscord(token=TOKEN) as dc:
        general = dc.text_channel(dc.guild())
        ann = dc.user("ann")
        async with connected(dc, content=False) as client:
            dc.send_user_message(general, ann, "chatter")
            dc.mention(general, ann, "for you")
            while len(client.seen) < 2:
                await asyncio.sleep(0.02)
        assert [m.content for m in client.seen] == ["", f"<@{dc.bot.id}> for you"]


async def test_an_interaction_is_answered_once_and_only_within_three_seconds() -> None:
    with FakeDiscord(token=TOKEN) as dc:
        general = dc.text_channel(dc.guild())
        ann = dc.user("ann")
        async with connected(dc) as client:
            card = await client.get_partial_messageable(general.id).send(
                "ok?", view=_view("approve:7:once")
            )
            first = dc.press_button(general, ann, card.id, "approve:7:once")
            while not client.pressed:
                await asyncio.sleep(0.02)
            await client.pressed[0].response.defer(ephemeral=True, thinking=True)
            await client.pressed[0].edit_original_response(content="Allowed.")
            answer = dc.answer(first)
            assert answer is not None and answer.type == 5 and answer.ephemeral
            assert answer.content == "Allowed."
            token = dc.interactions[first].token
            async with httpx.AsyncClient(base_url=dc.api_base) as http:
                twice = await http.post(
                    f"/v10/interactions/{first}/{token}/callback", json={"type": 6}
                )
            assert twice.status_code == 400 and twice.json()["code"] == 40060
            dc.interactions[first].created -= 10  # as if it came 10 s ago
            second = dc.press_button(general, ann, card.id, "approve:7:once")
            while len(client.pressed) < 2:
                await asyncio.sleep(0.02)
            dc.interactions[second].created -= 10
            with pytest.raises(discord.NotFound):
                await client.pressed[1].response.defer()


def _view(custom_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Allow", custom_id=custom_id))
    return view
