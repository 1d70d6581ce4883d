"""The ``agentproc`` console script.

``agentproc --version`` is answered here, before click (or anything else of
the bridge) is imported, so scripts that check the version pay for Python's
start-up only. Everything else goes to :mod:`bridge.cli.main`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from agentproc import __version__

        sys.stdout.write(f"agentproc, version {__version__}\n")
        raise SystemExit(0)
    from bridge.cli.main import main as cli

    cli()
