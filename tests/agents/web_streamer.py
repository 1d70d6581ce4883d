"""Test agent: streams its answer slowly, as AGENT_PARTIAL lines, then prints
the whole answer as its reply. STREAM_CHUNKS chunks (default 5), STREAM_DELAY
seconds before each (default 0.2)."""

import json
import os
import sys
import time

chunks = int(os.environ.get("STREAM_CHUNKS", "5"))
delay = float(os.environ.get("STREAM_DELAY", "0.2"))
message = os.environ.get("AGENT_MESSAGE", "")
parts = [f"part {i} of {message}. " for i in range(1, chunks + 1)]
for part in parts:
    time.sleep(delay)
    sys.stdout.write("AGENT_PARTIAL:" + json.dumps(part) + "\n")
    sys.stdout.flush()
print("".join(parts) + "done.")
