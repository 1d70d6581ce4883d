"""A bot's handler registry (bridge.channels.bot) and reading a text reply
to a question (bridge.channels.choices): pure, no platform."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from bridge.channels import commands
from bridge.channels.bot import Bot, BotError, Message, User
from bridge.channels.choices import Choices, choice_data, pick

ANN = User("42", "ann", "Ann", known=True)


def msg(text: str, *, addressed: bool = True, command: str = "") -> Message:
    return Message(1, text, ANN, addressed=addressed, command=command)


def test_a_command_then_a_mention_then_a_message_then_the_agent() -> None:
    bot = Bot()

    @bot.command("deploy", help="ship it")
    async def deploy(thread, message) -> None: ...  # type: ignore[no-untyped-def]

    @bot.on_mention(pattern=r"(?i)\bweather\b")
    async def weather(thread, message) -> None: ...  # type: ignore[no-untyped-def]

    @bot.on_message(pattern="^!")
    async def bang(thread, message) -> None: ...  # type: ignore[no-untyped-def]

    assert bot.choose(msg("/deploy main", command="deploy")) is deploy
    assert bot.choose(msg("what's the Weather like")) is weather
    assert bot.choose(msg("weather", addressed=False)) is None, "a mention handler needs a mention"
    assert bot.choose(msg("!ping", addressed=False)) is bang
    assert bot.choose(msg("!weather")) is weather, "a mention comes before a message"
    assert bot.choose(msg("hello")) is None, "the agent's"
    assert bot.choose(msg("/other", command="other")) is None
    assert bot.commands == {"deploy": "ship it"}


def test_bare_decorators_take_everything() -> None:
    bot = Bot()

    @bot.on_message
    async def everything(thread, message) -> None: ...  # type: ignore[no-untyped-def]

    assert bot.choose(msg("anything", addressed=False)) is everything


def test_a_bot_defined_wrongly_says_what_is_wrong() -> None:
    bot = Bot()

    def plain(thread, message) -> None: ...  # type: ignore[no-untyped-def]

    async def fine(thread, message) -> None: ...  # type: ignore[no-untyped-def]

    with pytest.raises(BotError, match="must be defined with `async def`"):
        bot.on_message(plain)  # type: ignore[arg-type]
    with pytest.raises(BotError, match="expected a function, got str"):
        bot.on_mention("nope")  # type: ignore[call-overload]
    with pytest.raises(BotError, match="1 to 32 lowercase letters"):
        bot.command("Deploy Now")
    with pytest.raises(BotError, match="one of the bridge's own commands"):
        bot.command("cancel")
    bot.command("ship")(fine)
    with pytest.raises(BotError, match="defined twice"):
        bot.command("ship")
    with pytest.raises(BotError, match="is not a regular expression"):
        bot.on_message(pattern="(")
    with pytest.raises(BotError, match="must be a pydantic model class"):
        Bot(state=dict)  # type: ignore[arg-type]

    class Fine(BaseModel):
        n: int = 0

    assert Bot(state=Fine).state is Fine


def test_help_lists_a_bots_commands_first() -> None:
    text = commands.help_text(agent="claude", extra={"deploy": "ship it"})
    assert text.index("/deploy - ship it") < text.index("/new - ")
    assert "Anything else you write goes to it" in text
    assert "Anything you write goes to it" in commands.help_text(agent="claude")
    found = commands.parse("/deploy main", extra={"deploy": "x"})
    assert found is not None and (found.name, found.rest) == ("deploy", "main")
    assert commands.parse("/deploy main") is None, "unknown without the bot: the agent's"


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("2", 1),
        (" #2 ", 1),
        ("2.", 1),
        ("1)", 0),
        ("Deploy  now", 0),
        ("CANCEL", 2),
        ("4", None),
        ("0", None),
        ("two", None),
        ("", None),
        ("12345", None),
    ],
)
def test_a_text_reply_names_an_option_by_number_or_label(text: str, index: int | None) -> None:
    assert pick(text, ("Deploy now", "Later", "Cancel")) == index


def test_questions_are_answered_once_and_only_by_whom_they_ask() -> None:
    choices = Choices()
    q = choices.ask("t1", ("yes", "no"), frozenset({"42"}))
    assert choices.waiting("t1") and not choices.waiting("t2")
    assert choices.press(choice_data(q.token, 0), "99", "id:99", admin=False) == (
        "This question is for someone else."
    )
    assert not choices.reply("t1", "1", "99", "id:99", admin=False)
    assert not choices.reply("t1", "maybe", "42", "ann", admin=False), "not an option"
    assert choices.reply("t1", "no", "42", "ann", admin=False)
    assert q.answer is not None and (q.answer.index, q.answer.by) == (1, "ann")
    assert choices.press(choice_data(q.token, 0), "1", "root", admin=True) == (
        "It was answered already."
    )
    assert choices.press(choice_data(q.token, 7), "42", "ann", admin=False) == (
        "This question is closed."
    )
    choices.close(q)
    assert not choices.waiting("t1")
    assert choices.press(choice_data(q.token, 0), "42", "ann", admin=False) == (
        "This question is closed."
    )
    anyone = choices.ask("t1", ("a", "b"))
    assert choices.press(choice_data(anyone.token, 1), "77", "id:77", admin=False) == (
        "You chose: b"
    )
