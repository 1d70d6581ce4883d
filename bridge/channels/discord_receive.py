"""What people do on Discord, handed to the inbox: messages, button presses,
application commands.

The gateway has no acknowledgement: an event the bridge was not connected
for is never sent again. So "never lose" means two things here. While
connected, messages are handed to the inbox one at a time, in order, and a
message whose handling fails is tried again before the next. And at every
(re)connection that is not a resume, the history of each conversation the
log knows is read from just after the newest message the log holds of it
(:func:`bridge.channels.discord_keys.last_seen`), so what was written there
while the bridge was away is taken now; the log recognises a message it has
by its id. What history cannot give back: a direct message or a mention
that would have *started* a conversation while the bridge was away (there is
no listing of them for a bot); a command typed after the last message of a
conversation is answered again.

Presses and commands are interactions: each must be answered within three
seconds, so each is deferred at once and answered when the inbox returns.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import discord

from agentproc import wire

from .discord_keys import dm_key, strip_mentions, target, thread_key
from .errors import Closing
from .platform import Inbox, Incoming, Press

if TYPE_CHECKING:
    from .discord_platform import DiscordPlatform

__all__ = ["HANDLE_ATTEMPTS", "Receiver"]

log = logging.getLogger("bridge.channels.discord")

#: Seconds before connecting to the gateway again after it refused, doubling to the most.
RETRY_SECS, MAX_RETRY_SECS = 5.0, 120.0
#: Tries at handling one message before it is skipped.
HANDLE_ATTEMPTS = 3
#: The most messages read back from one conversation's history at a start.
CATCH_UP_LIMIT = 500
#: Message ids remembered as handled, so a catch-up does not take them twice.
SEEN_LIMIT = 10_000
#: Commands whose answer only the person who asked sees.
QUIET_COMMANDS = ("whoami", "help")
#: Commands about a conversation, which a plain channel (in thread mode) is not.
CONVERSATION_COMMANDS = ("new", "cancel", "status")


def display(user: discord.abc.User) -> str:
    shown = user.display_name
    return f"{shown} (@{user.name})" if shown != user.name else user.name


class Receiver:
    """The receiving half of :class:`~bridge.channels.discord_platform.DiscordPlatform`."""

    def __init__(
        self,
        platform: DiscordPlatform,
        last_seen: Callable[[], Awaitable[Mapping[str, int]]] | None,
    ) -> None:
        self.platform = platform
        self.last_seen = last_seen
        # None: read the histories back (the gateway is ready).
        self._queue: asyncio.Queue[discord.Message | None] = asyncio.Queue()
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._inbox: Inbox | None = None

    # --- from the client's events

    def ready(self) -> None:
        self._queue.put_nowait(None)

    def queue(self, message: discord.Message) -> None:
        self._queue.put_nowait(message)

    async def run(self, inbox: Inbox) -> None:
        self._inbox = inbox
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._consume, inbox)
            await self._connect()
            log.error(
                "discord: the gateway closed the connection for good (the token was revoked?); "
                "nothing more is received until the bridge is restarted"
            )
            await anyio.sleep_forever()

    async def _connect(self) -> None:
        """Keep the gateway connection (discord.py reconnects and resumes by
        itself); what it gives up on is tried again here, with the reason
        told in words. Returns when the client was closed for good."""
        client = self.platform.client
        pause = RETRY_SECS
        while not client.is_closed():
            try:
                await client.connect(reconnect=True)
            except discord.PrivilegedIntentsRequired:
                log.error(
                    "discord: the bot needs the Message Content intent, which is off for this "
                    "application: in the Developer Portal, open the application, Bot, "
                    "Privileged Gateway Intents, and turn on Message Content Intent; trying "
                    "again in %g s",
                    pause,
                )
            except (
                discord.ConnectionClosed,
                discord.GatewayNotFound,
                discord.HTTPException,
                aiohttp.ClientError,
                OSError,
            ) as exc:
                log.warning("discord: the gateway connection failed (%s); trying again", exc)
            else:
                return
            await anyio.sleep(pause)
            pause = min(pause * 2, MAX_RETRY_SECS)

    async def _consume(self, inbox: Inbox) -> None:
        while True:
            item = await self._queue.get()
            try:
                if item is None:
                    await self._catch_up(inbox)
                else:
                    await self._take(inbox, item)
            except Closing:
                log.info(
                    "discord: shutting down; what is written now is read from the channels' "
                    "history at the next start"
                )
                await anyio.sleep_forever()  # until receiving is cancelled

    # --- messages

    async def _take(self, inbox: Inbox, message: discord.Message) -> None:
        """Hand a message to the inbox, trying again a few times when that
        fails (the store may be busy for a moment); then it is skipped."""
        if message.id in self._seen:
            return
        for attempt in range(1, HANDLE_ATTEMPTS + 1):
            try:
                await self._handle(inbox, message)
                break
            except Closing:
                raise
            except Exception:
                if attempt == HANDLE_ATTEMPTS:
                    log.exception("discord: message %s could not be handled; skipped", message.id)
                    break
                log.warning("discord: message %s failed; trying again", message.id)
                await anyio.sleep(attempt)
        self._seen[message.id] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)

    async def _handle(self, inbox: Inbox, message: discord.Message) -> None:
        me = self.platform.bot_id
        author = message.author
        if author.bot or message.webhook_id is not None or author.id == me:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return  # joins, pins, "thread started" and the like
        place = await self._place(message)
        if place is None:
            return
        key, private, addressed, opens = place
        text = strip_mentions(message.content, me)
        files = await self._files(message)
        if not text and not files:
            if me not in message.raw_mentions:
                return  # a sticker, an embed: nothing for an agent
            text = "/help"  # a bare mention: say what the bot is
        if opens:
            name = text.splitlines()[0] if text.strip() else ""
            self.platform.unopened.setdefault(key, name.strip() or f"{author.display_name}'s chat")
        await inbox.message(
            Incoming(
                thread=key,
                platform_id=str(message.id),
                user_id=str(author.id),
                display=display(author),
                text=text,
                private=private,
                addressed=addressed,
                attachments=tuple(files),
            )
        )

    async def _place(self, message: discord.Message) -> tuple[str, bool, bool, bool] | None:
        """The conversation of a message: its key, whether it is private,
        whether it is addressed to the bot, and whether its thread is still
        to be opened; None for a message that is nobody's conversation."""
        me = self.platform.bot_id
        channel: Any = message.channel
        if isinstance(channel, discord.PartialMessageable) or channel is None:
            channel = await self._channel(message.channel.id)
        ref = message.reference
        replied = (
            ref is not None
            and isinstance(ref.resolved, discord.Message)
            and ref.resolved.author.id == me
        )
        mentioned = me in message.raw_mentions or replied
        if isinstance(channel, discord.DMChannel):
            return dm_key(channel.id), True, True, False
        if isinstance(channel, discord.Thread):
            own = channel.owner_id == me
            return thread_key(channel.parent_id, channel.id), False, own or mentioned, False
        if isinstance(channel, discord.TextChannel):
            if not self.platform.threads:
                return str(channel.id), False, mentioned, False
            if not mentioned:
                return None
            return thread_key(channel.id, message.id), False, True, True
        return None

    async def _channel(self, channel_id: int) -> Any:
        found = self.platform.client.get_channel(channel_id)
        if found is not None:
            return found
        try:
            return await self.platform.client.fetch_channel(channel_id)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning("discord: cannot look up channel %s: %s", channel_id, exc)
            return None

    async def _files(self, message: discord.Message) -> list[wire.Attachment]:
        """The message's attachments, downloaded: the agent gets local files
        (the CDN's links expire)."""
        out = []
        for item in message.attachments:
            mime = item.content_type or mimetypes.guess_type(item.filename)[0]
            suffix = Path(item.filename).suffix or mimetypes.guess_extension(mime or "") or ""
            folder = self.platform.files_dir / str(message.channel.id)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{item.id}{suffix}"
            await item.save(path)
            head = (mime or "").partition("/")[0]
            kind = head if head in ("image", "audio", "video") else "file"
            out.append(wire.Attachment(kind, path.as_uri(), item.filename, mime))
        return out

    async def _catch_up(self, inbox: Inbox) -> None:
        """Read what was written in the known conversations while the bridge
        was away (see the module docstring)."""
        if self.last_seen is None:
            return
        try:
            known = await self.last_seen()
        except Exception:
            log.exception("discord: cannot tell what the log has; not reading history")
            return
        taken = 0
        for key, after in known.items():
            if not after:
                continue
            channel = await self._channel(target(key))
            if channel is None or not hasattr(channel, "history"):
                continue
            try:
                async for message in channel.history(
                    after=discord.Object(after), oldest_first=True, limit=CATCH_UP_LIMIT
                ):
                    if message.id not in self._seen and not message.author.bot:
                        taken += 1
                    await self._take(inbox, message)
            except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
                log.warning("discord: cannot read the history of %s: %s", key, exc)
        if taken:
            log.info("discord: read %d message(s) written while the bridge was away", taken)

    # --- interactions

    async def interaction(self, interaction: discord.Interaction[Any]) -> None:
        inbox = self._inbox
        if inbox is None:
            return
        try:
            if interaction.type is discord.InteractionType.component:
                await self._press(inbox, interaction)
            elif interaction.type is discord.InteractionType.application_command:
                await self._command(inbox, interaction)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning("discord: cannot answer an interaction: %s", exc)
        except Exception:
            log.exception("discord: an interaction could not be handled")

    def _key_of(self, channel: Any) -> str:
        if isinstance(channel, discord.DMChannel):
            return dm_key(channel.id)
        if isinstance(channel, discord.Thread):
            return thread_key(channel.parent_id, channel.id)
        return str(channel.id) if channel is not None else ""

    async def _press(self, inbox: Inbox, interaction: discord.Interaction[Any]) -> None:
        custom_id = str(_field(interaction, "custom_id"))
        await interaction.response.defer(ephemeral=True, thinking=True)
        user = interaction.user
        message = interaction.message
        note = await inbox.press(
            Press(
                self._key_of(interaction.channel),
                str(user.id),
                display(user),
                custom_id,
                str(message.id) if message is not None else "",
            )
        )
        if note:
            await interaction.edit_original_response(content=note)
        else:
            await interaction.delete_original_response()

    async def _command(self, inbox: Inbox, interaction: discord.Interaction[Any]) -> None:
        from .discord_platform import ANSWERING, Answering

        name = str(_field(interaction, "name"))
        channel = interaction.channel
        key = self._key_of(channel)
        private = isinstance(channel, discord.DMChannel)
        plain = not private and not isinstance(channel, discord.Thread)
        if name not in self.platform.commands:  # registered once, by an older config
            await interaction.response.send_message(
                f"/{name} is not a command of this bot any more; /help lists them.",
                ephemeral=True,
            )
            return
        if plain and self.platform.threads and name in CONVERSATION_COMMANDS:
            await interaction.response.send_message(
                f"/{name} is about a conversation: use it in one (a thread I answer in, or a "
                "direct message to me). Mention me here to start one.",
                ephemeral=True,
            )
            return
        await interaction.response.defer(ephemeral=name in QUIET_COMMANDS, thinking=True)
        answering = Answering(key, interaction)
        token = ANSWERING.set(answering)
        user = interaction.user
        try:
            await inbox.message(
                Incoming(
                    thread=key,
                    platform_id=f"i{interaction.id}",
                    user_id=str(user.id),
                    display=display(user),
                    text=f"/{name}",
                    private=private,
                    addressed=True,
                )
            )
        except Closing:
            await interaction.edit_original_response(
                content="The bridge is restarting; try again in a moment."
            )
            return
        finally:
            ANSWERING.reset(token)
        if not answering.used:
            await interaction.delete_original_response()


def _field(interaction: discord.Interaction[Any], name: str) -> object:
    data: Mapping[str, object] = interaction.data or {}
    return data.get(name, "")
