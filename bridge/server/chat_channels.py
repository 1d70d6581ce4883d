"""The chat channels a config names, set up for :func:`bridge.server.serve.serve`.

For each one (Telegram, Slack; Discord in :mod:`bridge.server.chat_discord`):
the platform adapter, logged in before the server says it is ready (a
refused token stops the start with a plain error); the channel worker with
the channel's access rules and the config's users by their id on that
platform (asking the config's bot, when there is one, before the agent); and
the delivery worker, with the platform's budgets shared by all of the bot's
conversations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.channels import reply_plan as rp
from bridge.channels.access import Policy
from bridge.channels.choices import Choices
from bridge.channels.commands import COMMANDS
from bridge.channels.delivery import Delivery
from bridge.channels.errors import PlatformError
from bridge.channels.handlers import BotRunner
from bridge.channels.http.app import Hook
from bridge.channels.inbound import ChannelAccess, ChannelWorker
from bridge.channels.platform import Platform
from bridge.channels.thread import ThreadServices
from bridge.conversations.dispatcher import Dispatcher

from .config import RouteConfig, ServerConfig
from .errors import ServerError

__all__ = ["ChatChannel", "assemble", "start_channels"]


@dataclass
class ChatChannel:
    """A channel ready to run: ``platform.run(worker)`` receives,
    ``delivery.run()`` sends; ``hook``, when the platform sends by webhook, is
    the HTTP route it calls."""

    platform: Platform
    worker: ChannelWorker
    delivery: Delivery
    #: The bot's handlers on this channel (None: every message is the agent's).
    runner: BotRunner | None = None
    #: The webhook route the HTTP app serves (None: the platform polls).
    hook: Hook | None = None

    async def close(self) -> None:
        close = getattr(self.platform, "close", None)
        if close is not None:
            await close()


def assemble(
    config: ServerConfig,
    dispatcher: Dispatcher,
    platform: Platform,
    route: RouteConfig,
    access: Policy,
    *,
    limits: rp.Limits | Callable[[str], rp.Limits],
    budget: rp.Budget,
    read_all: bool = False,
    bot_username: str = "",
    hook: Hook | None = None,
) -> ChatChannel:
    """A logged-in platform, with its channel worker (the config's users by
    their id on this platform, the bot's handlers when the config has a bot)
    and its delivery worker (``budget`` shared by all its conversations)."""
    users = {
        u.platform_ids[platform.name]: (u.name, u.admin)
        for u in config.users
        if platform.name in u.platform_ids
    }
    rules = ChannelAccess(access, users, read_all, bot_username)
    runner = None
    if config.bot is not None:
        services = ThreadServices(
            platform, dispatcher, config.bot, Choices(), users, limits, budget
        )
        runner = BotRunner(services)
    worker = ChannelWorker(platform, dispatcher, route.route, rules, agent=route.title, bot=runner)
    delivery = Delivery(platform, dispatcher, limits, budget=budget)
    return ChatChannel(platform, worker, delivery, runner, hook)


async def start_channels(
    config: ServerConfig, dispatcher: Dispatcher, files_dir: Path
) -> list[ChatChannel]:
    out: list[ChatChannel] = []
    t = config.telegram
    if t is not None:
        from bridge.channels.telegram import TelegramPlatform, limits_for
        from bridge.channels.telegram_webhook import webhook_hook

        platform = TelegramPlatform(
            t.token.get_secret_value(),
            api_base=t.api_base,
            files_dir=files_dir / "telegram",
            poll_timeout=t.poll_timeout,
            webhook=t.webhook,
            commands={**(config.bot.commands if config.bot else {}), **COMMANDS},
        )
        try:
            await platform.start()
        except PlatformError as exc:
            raise ServerError(
                f"the Telegram bot cannot log in: {exc}",
                hint="check the token in the variable channels.telegram.token_env names, "
                "and api_base" + (", and webhook.url" if t.webhook else ""),
            ) from None
        # Telegram's bot-wide limit: about 30 messages a second over all chats.
        out.append(
            assemble(
                config,
                dispatcher,
                platform,
                t.route,
                t.access,
                limits=limits_for,
                budget=rp.Budget(30.0, 30.0),
                read_all=t.groups_read_all,
                bot_username=platform.username,
                hook=webhook_hook(platform) if t.webhook is not None else None,
            )
        )
    if config.slack is not None:
        out.append(await _slack_channel(config, dispatcher, files_dir))
    if config.discord is not None:
        from .chat_discord import discord_channel

        out.append(await discord_channel(config, config.discord, dispatcher, files_dir))
    return out


async def _slack_channel(
    config: ServerConfig, dispatcher: Dispatcher, files_dir: Path
) -> ChatChannel:
    from bridge.channels.slack import SlackPlatform, limits_for
    from bridge.channels.slack_http import events_hook

    s = config.slack
    assert s is not None
    own = config.bot.commands if config.bot else {}
    platform = SlackPlatform(
        s.bot_token.get_secret_value(),
        app_token=s.app_token.get_secret_value() if s.app_token else "",
        signing_secret=s.signing_secret.get_secret_value() if s.signing_secret else "",
        api_base=s.api_base,
        files_dir=files_dir / "slack",
        commands=COMMANDS,
        bot_commands=own,
    )
    try:
        await platform.start()
    except PlatformError as exc:
        raise ServerError(
            f"the Slack app cannot log in: {exc}",
            hint="check the bot token in the variable channels.slack.bot_token_env names, "
            "and api_base",
        ) from None
    # Slack's chat.postMessage: about one message a second per channel, with
    # bursts; there is no documented workspace-wide figure, so a generous one.
    return assemble(
        config,
        dispatcher,
        platform,
        s.route,
        s.access,
        limits=limits_for,
        budget=rp.Budget(20.0, 20.0),
        bot_username=platform.username,
        hook=events_hook(platform, s.events_path) if s.by_events_api else None,
    )
