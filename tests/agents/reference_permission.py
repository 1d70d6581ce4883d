"""Test agent in the style of the reference implementation of wire 0.2, without
the SDK: for each tool in ASK_TOOLS it sends a permission request with the
reference's field names (request_id, tool_name, input, tool_use_id), reads one
response line and looks only at the reference's answer fields (behavior,
updated_input, message). It prints one line per answer."""

import json
import os
import sys

PREFIX = "AGENT_PERMISSION_RESPONSE:"

for i, tool in enumerate(os.environ.get("ASK_TOOLS", "Bash").split(","), 1):
    request = {
        "request_id": f"req-{i}",
        "tool_name": tool,
        "input": {"command": f"step {i}"},
        "tool_use_id": f"toolu_{i}",
    }
    if i == 1:
        request["description"] = "the first step"
    sys.stdout.write("AGENT_PERMISSION_REQUEST:" + json.dumps(request, separators=(",", ":")))
    sys.stdout.write("\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        print(f"req-{i} EOF")
        break
    if not line.startswith(PREFIX):
        print(f"req-{i} unreadable: {line.strip()}")
        continue
    answer = json.loads(line[len(PREFIX) :])
    tool_input = answer.get("updated_input") or request["input"]
    print(
        f"{answer.get('request_id')} behavior={answer.get('behavior')} "
        f"command={tool_input['command']} message={answer.get('message', '')}"
    )
