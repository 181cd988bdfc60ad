"""A real PgBouncer (Debian's package) in transaction mode in front of the test Postgres."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from tests.helpers.servers import free_port

CONFIG = """\
[databases]
{alias} = host={host} port={port} dbname={database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer",) if os.access(path, os.X_OK)), None
    )


class PgBouncer:
    """``with PgBouncer(binary, server_url, database) as bouncer: bouncer.url`` (one alias)."""

    def __init__(self, binary: str, server_url: str, database: str, pool_size: int = 4) -> None:
        self._binary = binary
        self._pool_size = pool_size
        parts = urlsplit(server_url)
        self._user = parts.username or "postgres"
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 5432
        self._database = database
        self._directory = Path(tempfile.mkdtemp(prefix="tsprov-pgbouncer-"))
        self._process: subprocess.Popen[bytes] | None = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://{self._user}@127.0.0.1:{self.port}/{self._database}"

    def _write_config(self) -> Path:
        config = self._directory / "pgbouncer.ini"
        config.write_text(
            CONFIG.format(
                alias=self._database,
                host=self._host,
                port=self._port,
                database=self._database,
                listen_port=self.port,
                pool_size=self._pool_size,
                directory=self._directory,
            )
        )
        (self._directory / "users.txt").write_text(f'"{self._user}" ""\n')
        return config

    def _command(self, config: Path) -> list[str]:
        if os.geteuid() != 0:
            return [self._binary, str(config)]
        # PgBouncer refuses to run as root; it drops to an unprivileged user it is given.
        user = next(name for name in ("postgres", "nobody") if _exists(name))
        self._directory.chmod(0o777)
        return [self._binary, "-u", user, str(config)]

    def __enter__(self) -> PgBouncer:
        config = self._write_config()
        command = self._command(config)
        for path in self._directory.iterdir():
            path.chmod(0o644)
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"pgbouncer exited: {stderr}{self.log()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen: {self.log()}")

    def log(self) -> str:
        path = self._directory / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stderr is not None:
                self._process.stderr.close()
        shutil.rmtree(self._directory, ignore_errors=True)


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True
