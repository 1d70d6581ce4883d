"""The echo agent: answers every message with "You said: <message>"."""

from agentproc import create_profile


def handle(ctx):
    return f"You said: {ctx.message}"


create_profile(handle)
