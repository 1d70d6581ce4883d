"""SDK agent in decorator form; importing it must not run a turn."""

from agentproc import create_profile

#: Set when the module body ran to its end, so a test can tell an import from a run.
LOADED = True


@create_profile
def handle(ctx):
    return f"decorated: {ctx.message}"
