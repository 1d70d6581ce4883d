"""The fake Slack, checked against the real slack_sdk: what the Slack
channel's tests stand on speaks the wire the real client speaks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from fake_slack import FakeSlack, sign
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_web_api_answers_as_slack_does() -> None:
    with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        me = await client.auth_test()
        assert me["user_id"] == slack.bot.id and me["team_id"] == slack.team_id
        general = slack.channel("general")
        posted = await client.chat_postMessage(channel=general.id, text="hi", thread_ts=None)
        assert slack.bot_messages(general)[0].text == "hi"
        await client.chat_update(channel=general.id, ts=posted["ts"], text="hello")
        assert slack.find(general.id, posted["ts"]).edits == 1  # type: ignore[union-attr]
        with pytest.raises(SlackApiError) as too_long:
            await client.chat_update(channel=general.id, ts=posted["ts"], text="x" * 4001)
        assert too_long.value.response["error"] == "msg_too_long"
        with pytest.raises(SlackApiError) as gone:
            await client.chat_delete(channel=general.id, ts="1.000000")
        assert gone.value.response["error"] == "message_not_found"
        slack.rate_limit("chat.postMessage", retry_after=7)
        with pytest.raises(SlackApiError) as limited:
            await client.chat_postMessage(channel=general.id, text="again")
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "7"
        bad = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_base)
        with pytest.raises(SlackApiError) as refused:
            await bad.auth_test()
        assert refused.value.response["error"] == "invalid_auth"


async def test_a_stream_starts_appends_and_stops() -> None:
    with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        ann = slack.user("Ann")
        general = slack.channel("general")
        asked = slack.mention(general, ann, "hello")
        with pytest.raises(SlackApiError) as missing:
            await client.chat_startStream(channel=general.id, thread_ts=asked.ts)
        assert missing.value.response["error"] == "missing_recipient_user_id"
        started = await client.chat_startStream(
            channel=general.id,
            thread_ts=asked.ts,
            markdown_text="Hel",
            recipient_user_id=ann.id,
            recipient_team_id=slack.team_id,
        )
        await client.chat_appendStream(channel=general.id, ts=started["ts"], markdown_text="lo")
        await client.chat_stopStream(channel=general.id, ts=started["ts"], markdown_text="!")
        shown = slack.bot_messages(general, thread=asked.ts)
        assert [m.text for m in shown] == ["Hello!"] and not shown[0].streaming
        with pytest.raises(SlackApiError) as stopped:
            await client.chat_appendStream(channel=general.id, ts=started["ts"], markdown_text="x")
        assert stopped.value.response["error"] == "message_not_in_streaming_state"


async def test_socket_mode_delivers_and_resends_what_is_not_acknowledged() -> None:
    with FakeSlack(ack_timeout=0.3) as slack:
        web_client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        client = SocketModeClient(app_token=slack.app_token, web_client=web_client)
        seen: list[tuple[str, int | None]] = []

        async def listener(c: SocketModeClient, req: SocketModeRequest) -> None:
            seen.append((req.payload["event"]["type"], req.retry_attempt))
            if req.retry_attempt:  # the first delivery is left unanswered
                await c.send_socket_mode_response(SocketModeResponse(req.envelope_id))

        client.socket_mode_request_listeners.append(listener)  # type: ignore[arg-type]
        await client.connect()
        try:
            ann = slack.user("Ann")
            slack.dm(ann, "hello")
            await slack.until(lambda: not slack.unacked() and slack.envelopes)
            assert seen == [("message", 0), ("message", 1)]
            slack.disconnect()
            await slack.until(lambda: slack.connections == 2)
        finally:
            await client.close()


async def test_the_events_api_signs_what_it_posts() -> None:
    got: list[dict[str, Any]] = []
    secret = "8f742231b10e8888abcd99yyyzzz85a5"

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        verifier = SignatureVerifier(secret)
        assert verifier.is_valid_request(body, dict(request.headers))
        got.append(json.loads(body))
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/slack/events"
        with FakeSlack(events_url=url, signing_secret=secret) as slack:
            slack.dm(slack.user("Ann"), "hello")
            await slack.until(lambda: slack.hook_calls)
            await asyncio.sleep(0)
        assert got[0]["event"]["text"] == "hello"
        assert sign(secret, "1", b"x").startswith("v0=")
    finally:
        await runner.cleanup()
