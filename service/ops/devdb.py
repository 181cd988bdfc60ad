"""Find a Postgres for development and tests, or start a private one.

Order: ``TSPROV_DATABASE_URL`` when set; else the server on 127.0.0.1:5432 when it answers;
else a private cluster under ``.tsprov/pg`` built from the system's Postgres binaries.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

LOCAL_SERVER = ("127.0.0.1", 5432)
PRIVATE_PORT = 55432


class DevDatabaseError(RuntimeError):
    """No Postgres could be found or started."""


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _postgres_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.insert(0, found)
    if not candidates:
        raise DevDatabaseError(
            "No Postgres found: set TSPROV_DATABASE_URL, start a server on 127.0.0.1:5432, "
            "or install Postgres (apt-get install postgresql) so tsprov can start its own."
        )
    return Path(candidates[0]).parent


def _run_as_owner(args: list[str], owner: str | None) -> None:
    # Postgres refuses to run as root; run its tools as the 'postgres' system user then.
    command = ["runuser", "-u", owner, "--", *args] if owner else args
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603


@dataclass(frozen=True)
class PostgresServer:
    """A server URL without a database; ``started`` when this process started it."""

    url: str
    data_dir: Path | None = None

    @property
    def started(self) -> bool:
        return self.data_dir is not None

    def stop(self) -> None:
        """Stop the private cluster this process started; a no-op for any other server."""
        if self.data_dir is None:
            return
        pg_ctl = str(_postgres_bin() / "pg_ctl")
        _run_as_owner([pg_ctl, "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], _owner())


def _owner() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def start_private_cluster(root: Path) -> PostgresServer:
    """Start (creating if needed) a cluster under ``root``."""
    url = f"postgresql://postgres@127.0.0.1:{PRIVATE_PORT}"
    if _answers("127.0.0.1", PRIVATE_PORT):
        return PostgresServer(url)
    bin_dir = _postgres_bin()
    data = root / "data"
    owner = _owner()
    root.mkdir(parents=True, exist_ok=True)
    if owner:
        shutil.chown(root, owner)
    if not (data / "PG_VERSION").exists():
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        _run_as_owner(initdb, owner)
    options = f"-p {PRIVATE_PORT} -c listen_addresses=127.0.0.1 -k {root}"
    log = str(root / "log")
    _run_as_owner(
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", log, "-o", options, "-w", "start"], owner
    )
    return PostgresServer(url, data)


def find_server(project_root: Path) -> PostgresServer:
    """The server to use, per the order in this module's docstring."""
    if _answers(*LOCAL_SERVER):
        return PostgresServer("postgresql://postgres@127.0.0.1:5432")
    return start_private_cluster(project_root / ".tsprov" / "pg")


def with_database(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


async def ensure_database(url: str, *, recreate: bool = False) -> None:
    """Create the URL's database when missing (or anew, for tests)."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        if recreate:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def resolve_database_url(project_root: Path, name: str) -> tuple[str, PostgresServer | None]:
    """The URL to use, with its database created, and the server when one was found here."""
    configured = os.environ.get("TSPROV_DATABASE_URL")
    if configured:
        return configured, None
    server = find_server(project_root)
    url = with_database(server.url, name)
    try:
        asyncio.run(ensure_database(url))
    except (OSError, asyncpg.PostgresError) as exc:
        server.stop()
        raise DevDatabaseError(f"Postgres at {_safe(url)} is not usable: {exc}") from exc
    return url, server


def _safe(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port or 5432}{parts.path}"
