"""A stand-in for the ``tailscale`` CLI that ``tsprov-enroll`` runs: ``up`` reads the key from
``--auth-key=file:PATH``, notes what it saw, and joins through the sandbox's ``/sandbox/join``.

The test installs it as ``tailscale`` first on PATH. It writes what it saw (its argv, the key
file's mode, the key) to ``$STAND_IN_RECORD``; ``$STAND_IN_EXIT`` forces a failing exit.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import httpx


def option(args: list[str], name: str) -> str | None:
    prefix = f"--{name}="
    return next((arg.removeprefix(prefix) for arg in args if arg.startswith(prefix)), None)


def main() -> int:
    args = sys.argv[1:]
    if args[:1] != ["up"]:
        return 64
    auth_key = option(args, "auth-key") or ""
    key_path = Path(auth_key.removeprefix("file:"))
    key = key_path.read_text()
    hostname = option(args, "hostname") or "stand-in-host"
    joined = httpx.post(
        f"{os.environ['STAND_IN_SANDBOX']}/sandbox/join",
        json={"authKey": key, "hostname": hostname},
        timeout=30,
    )
    record = {
        "argv": sys.argv,
        "auth_key_option": auth_key,
        "key_mode": stat.S_IMODE(key_path.stat().st_mode),
        "key": key,
        "join_status": joined.status_code,
        "device": joined.json(),
    }
    Path(os.environ["STAND_IN_RECORD"]).write_text(json.dumps(record))
    forced = os.environ.get("STAND_IN_EXIT")
    if forced:
        return int(forced)
    return 0 if joined.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
