"""Test agent for the CLI: prints, as one JSON line, the turn's AGENT_* variables,
every CLI_* variable and its working directory."""

import json
import os

shown = {k: v for k, v in os.environ.items() if k.startswith(("AGENT_", "CLI_"))}
shown["cwd"] = os.getcwd()
shown["PWD"] = os.environ.get("PWD", "")
print(json.dumps(shown, sort_keys=True))
