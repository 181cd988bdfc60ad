"""Running ``tailscale up`` with a key that never reaches argv, the environment or a shell.

The key goes to a private file that exists only while ``tailscale up`` runs, and
``--auth-key=file:PATH`` names the file: the process list shows the path, never the key.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def private_key_file(auth_key: str) -> Iterator[Path]:
    """A file only this user can read, holding ``auth_key``; removed on the way out."""
    # mkstemp creates the file 0600 with O_EXCL: no moment in which another user could
    # open it, and no following of a symlink planted at the name.
    descriptor, name = tempfile.mkstemp(prefix="tsprov-enroll-", suffix=".key")
    path = Path(name)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(auth_key)
        yield path
    finally:
        path.unlink(missing_ok=True)


def tailscale_up_command(key_path: Path, hostname: str | None, tailscale: str) -> list[str]:
    command = [tailscale, "up", f"--auth-key=file:{key_path}"]
    if hostname:
        command.append(f"--hostname={hostname}")
    return command


def run_tailscale_up(auth_key: str, hostname: str | None, tailscale: str = "tailscale") -> int:
    """Run ``tailscale up`` with ``auth_key``; its exit status (127 when it is missing)."""
    with private_key_file(auth_key) as key_path:
        command = tailscale_up_command(key_path, hostname, tailscale)
        try:
            # No shell: argv goes to tailscale as it is, and nothing is interpolated.
            return subprocess.run(command, check=False).returncode  # noqa: S603
        except FileNotFoundError:
            return 127
