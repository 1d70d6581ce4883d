"""Test agent: writes the bytes in REPLAY_HEX to stdout, then exits.

REPLAY_EXIT sets the exit status; REPLAY_SIGNAL makes it die by that signal.
REPLAY_CHUNK writes in chunks of that many bytes, flushing each.
"""

import os
import signal
import sys

data = bytes.fromhex(os.environ.get("REPLAY_HEX", ""))
chunk = int(os.environ.get("REPLAY_CHUNK", "0")) or len(data) or 1
out = sys.stdout.buffer
for i in range(0, len(data), chunk):
    out.write(data[i : i + chunk])
    out.flush()
sig = int(os.environ.get("REPLAY_SIGNAL", "0"))
if sig:
    if sig not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
sys.exit(int(os.environ.get("REPLAY_EXIT", "0")))
