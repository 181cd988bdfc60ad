"""``tsprov status``: what a deployment is doing, read from its database and settings.

The audit sealer's lag is not reported: this version of the audit trail has no sealer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from sqlalchemy import make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import __version__
from service.crypto.keyring import KeyRingError
from service.jobs import JOBS, last_runs
from service.provisioning.store import count_by_status
from service.settings import Settings

NOT_READY = {
    "encryption_keys": "no encryption keys (set TSPROV_ENCRYPTION_KEYS or _FILE)",
    "database": "the database does not answer",
    "schema_at_head": "the schema is behind the code (run tsprov migrate)",
}


@dataclass
class Status:
    version: str
    database: str
    schema: str = "unknown"
    checks: dict[str, bool] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    background: dict[str, str | None] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(self.checks.values())


def shown_database(settings: Settings) -> str:
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _keys_load(settings: Settings) -> bool:
    """As the service loads them at start-up: present and well formed."""
    # Imported here: the app (service.main) shows this status on its /console pages.
    from service.main import load_key_ring

    try:
        return load_key_ring(settings) is not None
    except KeyRingError:
        return False


def _schema_head(settings: Settings) -> str | None:
    # Imported here: alembic and its templates cost every serving worker about 6 MiB, and
    # only `tsprov status` and the operators' health page ask for the head.
    from alembic.script import ScriptDirectory

    from service.ops.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()


async def gather_status(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> Status:
    """Readiness as /readyz sees it (and the schema at head), counts and the loop's runs."""
    status = Status(version=__version__, database=shown_database(settings))
    status.checks["encryption_keys"] = _keys_load(settings)
    try:
        async with sessions() as session:
            current = await session.scalar(text("SELECT version_num FROM alembic_version"))
            status.schema = str(current)
            counts = await count_by_status(session)
            runs = await last_runs(session)
    except (SQLAlchemyError, OSError):  # refused, unknown host, timed out, no such database
        status.checks["database"] = False
        return status
    head = _schema_head(settings)
    status.checks["database"] = True
    status.checks["schema_at_head"] = current == head
    status.requests = {str(name): count for name, count in counts.items()}
    status.background = {name: _stamp(runs.get(name)) for name in JOBS}
    return status


def _stamp(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def render_status(status: Status, *, as_json: bool, now: datetime | None = None) -> str:
    if as_json:
        return json.dumps({**asdict(status), "ready": status.ready}, indent=2)
    failing = [NOT_READY[name] for name, ok in status.checks.items() if not ok]
    lines = [
        ("version", status.version),
        ("database", f"{status.database} (schema {status.schema})"),
        ("ready", "yes" if status.ready else f"no: {'; '.join(failing)}"),
    ]
    if status.requests:
        counted = ", ".join(f"{name} {count}" for name, count in status.requests.items())
        lines.append(("requests", counted))
    if status.background:
        lines.append(("background", _last_run(status.background, now or datetime.now(UTC))))
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in lines)


def _last_run(runs: dict[str, str | None], now: datetime) -> str:
    stamps = [datetime.fromisoformat(stamp) for stamp in runs.values() if stamp]
    if not stamps:
        return "never run (no `tsprov serve` has run its background loop on this database)"
    latest = max(stamps)
    never = [name for name, stamp in runs.items() if not stamp]
    ago = f"last run {latest.isoformat()} ({int((now - latest).total_seconds())} s ago)"
    return f"{ago}; never run: {', '.join(never)}" if never else ago
