"""security.md item 37 against a real restart: a private Postgres cluster, stopped and started."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from service.provisioning.notify import CHANNEL, RequestNotifier
from tests.faults.test_long_polls import until
from tests.helpers.servers import free_port


@dataclass
class Cluster:
    url: str
    data: Path
    bin_dir: Path
    owner: str | None

    def pg_ctl(self, *args: str) -> None:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args]
        if self.owner:  # Postgres refuses to run as root
            command = ["runuser", "-u", self.owner, "--", *command]
        subprocess.run(command, check=True, capture_output=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A throwaway cluster of this test's own, so restarting it disturbs nobody else."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    initdb = shutil.which("initdb") or (found[0] if found else None)
    if initdb is None:
        pytest.skip("no Postgres binaries here to run a private cluster")
    root = Path(tempfile.mkdtemp(prefix="tsprov-restart-"))
    owner = "postgres" if os.geteuid() == 0 else None
    if owner:
        shutil.chown(root, owner)
    port = free_port()
    made = Cluster(f"postgresql://postgres@127.0.0.1:{port}/postgres", root / "data",
                   Path(initdb).parent, owner)  # fmt: skip
    init = [initdb, "-D", str(made.data), "-U", "postgres", "-A", "trust"]
    subprocess.run(["runuser", "-u", owner, "--", *init] if owner else init,
                   check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root}"
    made.pg_ctl("-l", str(root / "log"), "-o", options, "-w", "start")
    try:
        yield made
    finally:
        made.pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


async def test_item_37_the_listener_comes_back_after_a_database_restart(cluster: Cluster) -> None:
    notifier = RequestNotifier(cluster.url)
    await notifier.start()
    request_id = uuid.uuid4()
    try:
        assert notifier.listening
        with notifier.watch(request_id) as changed:
            # With a log file: a server started with pg_ctl's own output would hold it open.
            log = str(cluster.data.parent / "log")
            await asyncio.to_thread(cluster.pg_ctl, "-l", log, "-m", "fast", "-w", "restart")
            await until(lambda: notifier.listening and notifier.version(request_id) >= 2,
                        "the loss noticed and the listener back")  # fmt: skip
            changed.clear()
            sender = await asyncpg.connect(cluster.url)
            try:
                await sender.execute("SELECT pg_notify($1, $2)", CHANNEL, str(request_id))
            finally:
                await sender.close()
            await until(changed.is_set, "the wake-up through the new connection")
    finally:
        await notifier.stop()
