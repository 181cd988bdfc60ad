"""The floor for each console page: a bare endpoint that runs the SQL the page needs, by hand,
and answers its rows as JSON. No identity, no ORM, no templates, no CSP: the least the same
job needs, served by the same stack (Starlette, asyncpg) on the same database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# The same keyset as the page: newest first on (created_at, id), 50 and one more.
SQL = {
    "requests": "SELECT * FROM provisioning_request ORDER BY created_at DESC, id DESC LIMIT 51",
    "requests_after": "SELECT * FROM provisioning_request WHERE (created_at, id) < ($1, $2) "
    "ORDER BY created_at DESC, id DESC LIMIT 51",
    "status": "SELECT * FROM provisioning_request WHERE status = $1 "
    "ORDER BY created_at DESC, id DESC LIMIT 51",
    "status_after": "SELECT * FROM provisioning_request WHERE status = $1 "
    "AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT 51",
    "timeline": "SELECT * FROM audit_event WHERE user_id = $1 AND event_time BETWEEN $2 AND $3 "
    "AND target ->> 'id' = ANY($4) ORDER BY event_time, seq LIMIT 500",
    "users": "SELECT * FROM user_account WHERE user_id > $1 ORDER BY user_id LIMIT 51",
    "grant_counts": "SELECT user_id, status, count(*) FROM consent_grant "
    "WHERE user_id = ANY($1) GROUP BY user_id, status",
    "device_counts": "SELECT user_id, count(*) FROM provisioning_request "
    "WHERE user_id = ANY($1) AND device_node_id IS NOT NULL GROUP BY user_id",
    "callers": "SELECT c.*, (SELECT max(event_time) FROM audit_event e "
    "WHERE e.actor ->> 'id' = c.id::text) FROM caller c ORDER BY name",
    "audit": "SELECT * FROM audit_event e LEFT JOIN audit_seal s ON s.event_seq = e.seq "
    "WHERE event_time >= $1 AND event_time < $2 AND (event_time, seq) > ($3, $4) "
    "ORDER BY event_time, seq LIMIT 51",
    "health": "SELECT status, count(*) FROM provisioning_request GROUP BY status",
    "runs": "SELECT * FROM background_run",
    "verify": "SELECT s.*, e.* FROM audit_seal s LEFT JOIN audit_event e ON e.seq = s.event_seq "
    "WHERE s.position > (SELECT max(position) FROM audit_seal) - $1 ORDER BY s.position",
}


def _json(rows: list[asyncpg.Record]) -> Response:
    body = json.dumps([dict(row) for row in rows], default=str)
    return Response(body, media_type="application/json")


def _moment(request: Request, name: str) -> datetime:
    return datetime.fromisoformat(request.query_params[name])


async def requests(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    params = request.query_params
    status = [params["status"]] if "status" in params else []
    after = [_moment(request, "after"), uuid.UUID(params["id"])] if "after" in params else []
    name = ("status" if status else "requests") + ("_after" if after else "")
    return _json(await pool.fetch(SQL[name], *status, *after))


async def timeline(request: Request) -> Response:
    params = request.query_params
    rows = await request.app.state.pool.fetch(
        SQL["timeline"], params["user"], _moment(request, "start"), _moment(request, "end"),
        params.getlist("target"),
    )  # fmt: skip
    return _json(rows)


async def users(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    rows = await pool.fetch(SQL["users"], request.query_params.get("after", ""))
    ids = [row["user_id"] for row in rows]
    grants = await pool.fetch(SQL["grant_counts"], ids)
    devices = await pool.fetch(SQL["device_counts"], ids)
    return _json([*rows, *grants, *devices])


async def callers(request: Request) -> Response:
    return _json(await request.app.state.pool.fetch(SQL["callers"]))


async def audit(request: Request) -> Response:
    rows = await request.app.state.pool.fetch(
        SQL["audit"], _moment(request, "start"), _moment(request, "end"),
        _moment(request, "after"), int(request.query_params["seq"]),
    )  # fmt: skip
    return _json(rows)


async def health(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    rows = [*await pool.fetch(SQL["health"]), *await pool.fetch(SQL["runs"])]
    return _json(rows)


async def verify(request: Request) -> Response:
    rows = await request.app.state.pool.fetch(SQL["verify"], int(request.query_params["last"]))
    return Response(json.dumps({"read": len(rows)}), media_type="application/json")


def floor_app(dsn: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=5)
        yield
        await app.state.pool.close()

    routes: list[Any] = [
        Route(f"/{name}", endpoint)
        for name, endpoint in (
            ("requests", requests), ("timeline", timeline), ("users", users),
            ("callers", callers), ("audit", audit), ("health", health), ("verify", verify),
        )
    ]  # fmt: skip
    return Starlette(routes=routes, lifespan=lifespan)
