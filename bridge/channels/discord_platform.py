"""Discord, through discord.py's :class:`discord.Client`.

:class:`DiscordPlatform` is the :class:`~bridge.channels.platform.Platform`
of a Discord bot. It logs in over REST, opens the gateway WebSocket, and
hands what people write to the inbox (:mod:`bridge.channels.discord_receive`
turns gateway events into :class:`Incoming` and :class:`Press`).

- A conversation is a direct message, a thread, or with ``threads=False`` a
  text channel answered in place (keys: :mod:`bridge.channels.discord_keys`).
  A mention of the bot in a text channel starts a thread from that message,
  opened when the bridge first writes there; in the bot's own threads and
  in DMs every message is for it, elsewhere only mentions and replies.
- Replies stream by editing (``reply_plan.DISCORD``: 2,000 characters, a
  write a second per channel, about 5 per 5 s). discord.py waits out a 429
  itself (it reads the ``X-RateLimit-*`` headers and sleeps before a bucket
  runs dry); a wait longer than 30 s, or a 429 after its retries, reaches the
  plan as :class:`~bridge.channels.errors.RateLimited`, which holds the
  channel that long and then sends the latest text.
- Buttons carry the bridge's data as their ``custom_id`` (``approve:EVENT:once``,
  ``choice:...``). Presses are read from every interaction, not from views
  held in memory, so a button posted before a restart is answered after it,
  for as long as the message stays. A press is deferred at once (Discord
  wants an answer within 3 s), and the inbox's note then shown to the
  presser alone.
- Application commands ``/new`` ``/cancel`` ``/status`` ``/whoami`` ``/help``
  (and a bot's own) are registered at start; typed as text they work too.
- Files people attach are downloaded into ``files_dir`` and given to the
  agent as ``file://`` URLs (Discord's CDN links expire).
- discord.py has no base URL option: the REST base is
  ``discord.http.Route.BASE`` (``api_base`` + ``/v10``), and the gateway URL
  is asked of ``GET /gateway/bot`` at login and set as
  ``DiscordWebSocket.DEFAULT_GATEWAY``; both are process-wide.
- The token goes in the ``Authorization`` header and the gateway IDENTIFY;
  discord.py logs neither. Its logger is kept at INFO all the same.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from . import reply_plan as rp
from .discord_keys import parent, target
from .discord_wire import command_name, converted, fit, quiet_loggers, rows, said
from .errors import PlatformError
from .platform import Button, Capabilities, Inbox, Platform

__all__ = ["API_BASE", "LIMITS", "DiscordPlatform", "intents"]

log = logging.getLogger("bridge.channels.discord")

#: Discord's API; REST calls go to ``API_BASE/v10``.
API_BASE = "https://discord.com/api"
#: The API version the bridge speaks (discord.py 2.x speaks 10).
API_VERSION = 10
#: Rendering on Discord: 2,000 characters, a write a second per channel.
LIMITS = rp.DISCORD
#: A wait discord.py takes on itself before it hands a 429 to the plan (it
#: takes no less than 30).
MAX_RATELIMIT_WAIT = 30.0
#: Discord's limit for a thread's name.
MAX_THREAD_NAME = 100
#: Discord's codes the bridge acts on.
UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, THREAD_EXISTS = 10003, 10008, 160004


def intents() -> discord.Intents:
    """What the bot asks the gateway for: guilds (channels, threads), guild
    and direct messages, and message content (privileged: switched on in the
    Developer Portal, or guild messages come empty unless they mention the bot)."""
    out = discord.Intents.none()
    out.guilds = True
    out.guild_messages = True
    out.dm_messages = True
    out.message_content = True
    return out


@dataclass
class Answering:
    """An application command being answered: the first thing the bridge
    says in its conversation becomes the command's response."""

    thread: str
    interaction: discord.Interaction[Any]
    used: bool = False


#: The command the current task answers (set around the inbox's call).
ANSWERING: contextvars.ContextVar[Answering | None] = contextvars.ContextVar(
    "discord_answering", default=None
)


class _Client(discord.Client):
    """discord.py's client, with the platform's hooks."""

    def __init__(self, platform: DiscordPlatform, **options: Any) -> None:
        super().__init__(**options)
        self.platform = platform

    async def setup_hook(self) -> None:
        await self.platform.setup()

    async def on_ready(self) -> None:
        self.platform.receiver.ready()

    async def on_message(self, message: discord.Message) -> None:
        self.platform.receiver.queue(message)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        await self.platform.receiver.interaction(interaction)


class DiscordPlatform(Platform):
    name = "discord"
    capabilities = Capabilities(
        max_text=2000, threads=True, user_lookup=True, chat_interval=1.0, global_rate=40.0
    )

    def __init__(
        self,
        token: str,
        *,
        api_base: str = API_BASE,
        files_dir: Path,
        threads: bool = True,
        commands: Mapping[str, str] | None = None,
        last_seen: Callable[[], Awaitable[Mapping[str, int]]] | None = None,
        ready_timeout: float = 2.0,
    ) -> None:
        from .discord_receive import Receiver

        self.token = token
        self.api_base = api_base.rstrip("/")
        self.files_dir = files_dir
        self.threads = threads
        #: The application commands to register (name: what it does).
        self.commands = dict(commands or {})
        quiet_loggers()
        discord.VoiceClient.warn_nacl = False  # no voice here: not worth a warning
        discord.VoiceClient.warn_dave = False
        self.client = _Client(
            self,
            intents=intents(),
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
            guild_ready_timeout=ready_timeout,
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.receiver = Receiver(self, last_seen)
        #: Threads to open from a message when first written to (key: name).
        self.unopened: dict[str, str] = {}
        self._logged_in = False

    @property
    def bot_id(self) -> int:
        user = self.client.user
        return user.id if user is not None else 0

    # --- starting

    async def start(self) -> None:
        """Log in (``GET /users/@me``, the application), learn the gateway's
        URL and register the commands; a refused token is a PlatformError."""
        Route.BASE = f"{self.api_base}/v{API_VERSION}"
        try:
            await self.client.login(self.token)
        except discord.LoginFailure:
            raise PlatformError("discord: the token was refused (401 Unauthorized)") from None
        except (
            discord.HTTPException,
            discord.GatewayNotFound,
            aiohttp.ClientError,
            OSError,
        ) as exc:
            raise PlatformError(f"discord: cannot log in: {said(exc)}") from None
        self._logged_in = True

    async def setup(self) -> None:
        """discord.py's setup hook, after login: the gateway URL, the commands."""
        _, url, _ = await self.client.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        await self._register_commands()

    async def _register_commands(self) -> None:
        """Offer the commands in Discord's command picker (a failure only
        costs the picker: typed, they still work)."""
        app = self.client.application_id
        menu = [
            {"name": name, "description": what[:100], "type": 1}
            for name, what in self.commands.items()
            if command_name(name) and what.strip()
        ]
        if app is None or not menu:
            return
        try:
            await self.client.http.bulk_upsert_global_commands(app, menu)
        except discord.HTTPException as exc:
            log.warning("discord: cannot register the application commands: %s", said(exc))

    # --- receiving

    async def run(self, inbox: Inbox) -> None:
        if not self._logged_in:
            await self.start()
        await self.receiver.run(inbox)

    # --- sending

    async def post(self, thread: str, text: str, *, buttons: tuple[Button, ...] = ()) -> str:
        answering = ANSWERING.get()
        # The first thing said in the conversation of a command being
        # answered is its response (a card with buttons is a message of its own).
        if (
            answering is not None
            and answering.thread == thread
            and not answering.used
            and not buttons
        ):
            answering.used = True
            try:
                sent = await answering.interaction.edit_original_response(
                    content=fit(text), allowed_mentions=discord.AllowedMentions.none()
                )
                return str(sent.id)
            except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
                raise converted(exc) from None
        payload = {
            "content": fit(text),
            "components": rows(buttons),
            "allowed_mentions": {"parse": []},
        }
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=target(thread))
        try:
            if thread in self.unopened:
                await self._open(thread)
            data = await self._send(route, payload, thread)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise converted(exc) from None
        return str(data["id"])

    async def _send(self, route: Route, payload: dict[str, Any], thread: str) -> Any:
        """POST a message; a thread that is not there yet is opened first."""
        try:
            return await self.client.http.request(route, json=payload)
        except discord.NotFound as exc:
            if exc.code != UNKNOWN_CHANNEL or parent(thread) is None:
                raise
        await self._open(thread)
        return await self.client.http.request(route, json=payload)

    async def _open(self, thread: str) -> None:
        """Start the thread of ``thread`` from the message it is named after."""
        name = self.unopened.pop(thread, "") or "Conversation"
        route = Route(
            "POST",
            "/channels/{channel_id}/messages/{message_id}/threads",
            channel_id=parent(thread),
            message_id=target(thread),
        )
        body = {"name": name[:MAX_THREAD_NAME], "auto_archive_duration": 1440}
        try:
            await self.client.http.request(route, json=body)
        except discord.HTTPException as exc:
            if exc.code != THREAD_EXISTS:
                raise

    async def edit(
        self, thread: str, message_id: str, text: str, *, buttons: tuple[Button, ...] = ()
    ) -> None:
        route = Route(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=target(thread),
            message_id=int(message_id),
        )
        payload = {
            "content": fit(text),
            "components": rows(buttons),
            "allowed_mentions": {"parse": []},
        }
        try:
            await self.client.http.request(route, json=payload)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise converted(exc) from None

    async def delete(self, thread: str, message_id: str) -> None:
        route = Route(
            "DELETE",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=target(thread),
            message_id=int(message_id),
        )
        try:
            await self.client.http.request(route)
        except discord.NotFound:
            return  # gone already: what was asked
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise converted(exc) from None

    async def send_file(self, thread: str, path: Path, *, caption: str = "") -> str:
        try:
            file = discord.File(path, filename=path.name)
        except OSError as exc:
            raise PlatformError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            if thread in self.unopened:
                await self._open(thread)
            with discord.http.handle_message_parameters(
                content=fit(caption) or None,
                file=file,
                allowed_mentions=discord.AllowedMentions.none(),
            ) as params:
                data = await self.client.http.send_message(target(thread), params=params)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise converted(exc) from None
        finally:
            file.close()
        return str(data["id"])

    async def lookup_user(self, user_id: str) -> str | None:
        if not user_id.isdigit():
            return None
        try:
            user = await self.client.fetch_user(int(user_id))
        except (discord.HTTPException, aiohttp.ClientError, OSError):
            return None
        return user.global_name or user.name

    async def close(self) -> None:
        # discord.py's close leaves the task that waits for the guilds after
        # READY running; it would dispatch "ready" on a closed client.
        waiting = getattr(self.client._connection, "_ready_task", None)
        if waiting is not None:
            waiting.cancel()
        await self.client.close()
