"""The demo's approver: a script in the place of a person at `bulkhead approvals`.

It runs `bulkhead approvals --json`, prints each request it gets, and approves it once with
`bulkhead approve ID --once`. It creates the file named by its second argument once the hub has
registered it as an approver, and stops `bulkhead approvals` when it gets SIGTERM.

Usage: demo_approver.py BULKHEAD_BINARY READY_FILE SOCKET
"""

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    binary, ready, socket = sys.argv[1:]
    base = [binary, "--socket", socket]
    watcher = subprocess.Popen([*base, "approvals", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    signal.signal(signal.SIGTERM, lambda *_: watcher.terminate())

    def announce_when_attached() -> None:
        for line in watcher.stderr:
            if line.startswith("watching for flows"):
                Path(ready).touch()
            else:
                print(f"approver: {line.rstrip()}", file=sys.stderr)

    threading.Thread(target=announce_when_attached, daemon=True).start()
    for line in watcher.stdout:
        event = json.loads(line)
        if event["event"] != "request":
            continue
        fields = ", ".join(event["fields"]) or "the whole session"
        print(
            f"approver: request {event['id']} asks to move data from {event['source_app']} into "
            f"{event['target_app']}/{event['tool']} ({fields}); approving it once",
            flush=True,
        )
        subprocess.run([*base, "approve", event["id"], "--once"], check=False)
    return 0 if watcher.wait() in (0, -signal.SIGTERM) else 1


if __name__ == "__main__":
    sys.exit(main())
