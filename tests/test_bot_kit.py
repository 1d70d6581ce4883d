"""The test kit for bots (bridge.channels.testing), as a bot's author uses
it: the example bot of docs/BOTS.md, tested in memory with a real agent."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from bridge.channels.bot import Bot
from bridge.channels.testing import try_bot

pytestmark = pytest.mark.anyio
EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "deploy_bot.py"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def example() -> Bot:
    spec = importlib.util.spec_from_file_location("deploy_bot_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.bot  # type: ignore[no-any-return]


async def test_deploy_asks_first_and_remembers(example: Bot) -> None:
    async with try_bot(example) as chat:
        await chat.say("/deploy main")
        assert await chat.press("Deploy") == "You chose: Deploy"
        await chat.settle()
        await chat.say("/deploys")
        await chat.settle()
    assert chat.texts() == [
        "Deploy main to production?\n→ Deploy (answered by tester)",
        "You said: You are the release assistant of this repository.\n\n"
        "Deploy the branch main and report what the deploy script printed.",
        "1 deploy(s) so far; the last was main.",
    ]


async def test_cancel_and_the_agent_for_the_rest(example: Bot) -> None:
    async with try_bot(example) as chat:
        await chat.say("/deploy v2")
        with pytest.raises(TimeoutError):
            await chat.settle(timeout=0.3)  # the handler waits for an answer
        assert chat.texts() == ["Deploy v2 to production?"]
        assert await chat.press("Cancel") == "You chose: Cancel"
        await chat.settle()
        await chat.say("hello")
        await chat.settle()
        with pytest.raises(LookupError, match="no button 'Deploy'"):
            await chat.press("Deploy", timeout=0.2)
    assert chat.texts() == [
        "Deploy v2 to production?\n→ Cancel (answered by tester)",
        "Not deploying.",
        "You said: hello",
    ]
