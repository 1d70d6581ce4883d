"""Test agent: asks for permission for each tool named in ASK_TOOLS (comma-separated),
reads one response line per request, and prints what it got."""

import json
import os
import sys

tools = [t for t in os.environ.get("ASK_TOOLS", "Bash").split(",") if t]
for i, tool in enumerate(tools, 1):
    req = {"id": f"r{i}", "tool": tool, "input": {"n": i}, "description": f"use {tool}"}
    sys.stdout.write("AGENT_PERMISSION_REQUEST:" + json.dumps(req) + "\n")
    sys.stdout.flush()
for _ in tools:
    line = sys.stdin.readline()
    if not line:
        print("EOF")
        break
    prefix, _, payload = line.partition(":")
    resp = json.loads(payload)
    print(f"{prefix} {resp['id']} allow={resp['allow']} msg={resp['message']}")
