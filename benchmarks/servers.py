"""Starting, waiting for and stopping the processes a benchmark runs, and reading their RSS."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 60


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def tsprov_command() -> str:
    """The ``tsprov`` console script of the running interpreter's environment."""
    beside = Path(sys.executable).with_name("tsprov")
    found = str(beside) if beside.exists() else shutil.which("tsprov")
    if found is None:
        raise SystemExit("tsprov is not installed here: run `make .venv/.installed` first")
    return found


def clean_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any TSPROV_* or FLOOR_* variable, plus ``variables``."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TSPROV_", "FLOOR_"))
    }
    return {**kept, **variables}


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGINT (an operator's Ctrl-C: no drain period), then a kill if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(
    name: str, command: list[str], environment: dict[str, str], port: int, log_dir: Path
) -> Server:
    log = log_dir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=environment, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    return Server(name, f"http://127.0.0.1:{port}", process, log)


def wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}; see {server.log}"
            )
        try:
            if httpx.get(f"{server.url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} was not ready within {READY_SECONDS} s; see {server.log}")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers are its children)."""
    tree, index = [pid], 0
    while index < len(tree):
        children = Path(f"/proc/{tree[index]}/task/{tree[index]}/children")
        with contextlib.suppress(OSError):
            tree.extend(int(child) for child in children.read_text().split())
        index += 1
    return tree


def rss_mib(pid: int) -> float | None:
    """Resident set size from /proc, in MiB; None once the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
