"""Test agent for the CLI: asks once for permission to use Bash, then prints the
response line it reads on stdin, as it is, after "got: "."""

import json
import sys

request = {"id": "p1", "tool": "Bash", "input": {"command": "ls"}, "description": "list files"}
sys.stdout.write("AGENT_PERMISSION_REQUEST:" + json.dumps(request) + "\n")
sys.stdout.flush()
line = sys.stdin.readline()
print("got: " + (line.rstrip("\n") if line else "EOF"))
