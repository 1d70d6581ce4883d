#!/bin/sh
# Run a command in a network namespace of its own with only loopback up, so
# nothing it starts can reach beyond this machine. Falls back to running it
# as it is (with a notice) where namespaces cannot be made (not root).
if command -v unshare >/dev/null 2>&1 && unshare -n true 2>/dev/null; then
    exec unshare -n sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh "$@"
fi
echo "e2e: cannot make a network namespace here; running with the machine's network" >&2
exec "$@"
