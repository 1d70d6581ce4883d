"""The Discord channel a config names, set up for :func:`bridge.server.serve.serve`
(see :mod:`bridge.server.chat_channels`): the platform, logged in before the
server says it is ready; the channel worker with the config's users by their
Discord id; the delivery worker with Discord's budgets; and the log's newest
message of each conversation, where reading history starts at each connection."""

from __future__ import annotations

from pathlib import Path

from bridge.channels import reply_plan as rp
from bridge.channels.commands import COMMANDS
from bridge.channels.errors import PlatformError
from bridge.conversations.dispatcher import Dispatcher

from .chat_channels import ChatChannel, assemble
from .config import DiscordConfig, ServerConfig
from .errors import ServerError

__all__ = ["discord_channel"]

#: Sends a second over all of a bot's channels: Discord's bot-wide limit is
#: 50 requests a second, and some of those are not the plan's (threads, answers).
GLOBAL_RATE = 40.0


async def discord_channel(
    config: ServerConfig, dc: DiscordConfig, dispatcher: Dispatcher, files_dir: Path
) -> ChatChannel:
    from bridge.channels.discord_keys import last_seen
    from bridge.channels.discord_platform import LIMITS, DiscordPlatform

    platform = DiscordPlatform(
        dc.token.get_secret_value(),
        api_base=dc.api_base,
        files_dir=files_dir / "discord",
        threads=dc.threads,
        commands={**(config.bot.commands if config.bot else {}), **COMMANDS},
        last_seen=lambda: last_seen(dispatcher.store),
    )
    try:
        await platform.start()
    except PlatformError as exc:
        await platform.close()
        raise ServerError(
            f"the Discord bot cannot log in: {exc}",
            hint="check the token in the variable channels.discord.token_env names "
            "(the Developer Portal's Bot page, Reset Token), and api_base",
        ) from None
    return assemble(
        config,
        dispatcher,
        platform,
        dc.route,
        dc.access,
        limits=LIMITS,
        budget=rp.Budget(GLOBAL_RATE, GLOBAL_RATE),
    )
