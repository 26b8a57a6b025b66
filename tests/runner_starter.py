"""A `--starter command:...` for the runner tests: appends the start request it got, as one JSON line.

    python tests/runner_starter.py OUT_FILE [fail]

Each line is the stdin document plus `received` (epoch seconds) and `runner_pid` (the runner that
started it: this process's parent). With `fail` it records nothing and exits 3 with a message.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    received = time.time()
    payload = json.load(sys.stdin)
    if len(sys.argv) > 2 and sys.argv[2] == "fail":
        print("cannot reach the workflow engine", file=sys.stderr)
        return 3
    payload["received"] = received
    payload["runner_pid"] = os.getppid()
    with open(sys.argv[1], "a", encoding="utf-8") as out:
        out.write(json.dumps(payload) + "\n")
    print(f"proc-{payload['schedule_id'][:8]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
