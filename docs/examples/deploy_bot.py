"""A bot with commands of its own next to the agent (see docs/BOTS.md).

Run it with ``bot: deploy_bot.py:bot`` in bridge.yaml. Everything people
write that is not one of these commands goes to the route's agent as usual.
"""

from __future__ import annotations

from pydantic import BaseModel

from bridge.channels.bot import Bot, Message
from bridge.channels.thread import Thread


class Deploys(BaseModel):
    """What this bot remembers per conversation."""

    last_branch: str = ""
    count: int = 0


bot = Bot(state=Deploys)


@bot.command("deploy", help="deploy a branch, after asking: /deploy BRANCH")
async def deploy(thread: Thread, message: Message) -> None:
    branch = message.args.split()[0] if message.args.split() else "main"
    answer = await thread.await_choice(
        f"Deploy {branch} to production?", ["Deploy", "Cancel"], timeout=120, default="Cancel"
    )
    if answer != "Deploy":
        await thread.post("Not deploying.")
        return
    # The agent's reply streams into the chat as usual; it is also returned.
    reply = await thread.run_agent(
        f"Deploy the branch {branch} and report what the deploy script printed.",
        context="You are the release assistant of this repository.",
    )
    if not reply.ok:
        await thread.post(f"The deploy did not finish: {reply.error}")
        return
    done = await thread.state() or Deploys()
    await thread.set_state(Deploys(last_branch=branch, count=done.count + 1))


@bot.command("deploys", help="how many deploys this chat ran, and the last branch")
async def deploys(thread: Thread, message: Message) -> None:
    done = await thread.state()
    if done is None:
        await thread.post("No deploys from this chat yet.")
    else:
        await thread.post(f"{done.count} deploy(s) so far; the last was {done.last_branch}.")


@bot.command("recap", help="the last few things said here")
async def recap(thread: Thread, message: Message) -> None:
    said = await thread.get_messages(limit=6)
    lines = [f"{s.by or 'agent'}: {s.text[:80]}" for s in said if s.id != message.id]
    await thread.post("\n".join(lines) or "Nothing was said here yet.")


@bot.command("follow", help="read every message of this group, not only mentions")
async def follow(thread: Thread, message: Message) -> None:
    await thread.subscribe()
    await thread.post("I read along now. /unfollow to stop.")


@bot.command("unfollow", help="answer only when mentioned again")
async def unfollow(thread: Thread, message: Message) -> None:
    await thread.unsubscribe()
    await thread.post("I answer only when mentioned again.")
