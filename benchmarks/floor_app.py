"""The floor: the least a service must do per create + claim pair, to measure tsprov against.

Create: insert the request and an audit row, in one transaction. Claim: lock the request and
mark it (one ``UPDATE … RETURNING``, committed before the upstream call, as tsprov commits
its mint intent); call the sandbox's ``POST /api/v2/tailnet/-/keys`` with a reusable grant's
access token; store the outcome and an audit row. Three transactions, five statements.

Nothing else: no caller authentication, no grant lookup, decryption or refresh, no
idempotency, no hash chain, no access log. The same stack as tsprov (FastAPI, SQLAlchemy
async, asyncpg, httpx) and the same pool size, on the same database server.

    FLOOR_DATABASE_URL=postgresql+asyncpg://… FLOOR_SANDBOX_URL=http://127.0.0.1:… \\
    FLOOR_ACCESS_TOKEN=tskey-api-… python -m benchmarks.floor_app --port 8100 --workers 1
"""

from __future__ import annotations

import argparse
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import BigInteger, DateTime, Identity, String, update
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NO_STORE = {"Cache-Control": "no-store"}
log = logging.getLogger("floor")


class FloorBase(DeclarativeBase):
    pass


class FloorRequest(FloorBase):
    __tablename__ = "floor_request"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(32))
    hostname: Mapped[str | None] = mapped_column(String(63))
    key_id: Mapped[str | None] = mapped_column(String(64))
    key_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mint_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FloorAudit(FloorBase):
    __tablename__ = "floor_audit"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)


@dataclass(frozen=True)
class FloorConfig:
    database_url: str
    sandbox_url: str
    access_token: str
    pool_size: int = 10

    @classmethod
    def from_environment(cls) -> FloorConfig:
        return cls(
            os.environ["FLOOR_DATABASE_URL"],
            os.environ["FLOOR_SANDBOX_URL"],
            os.environ["FLOOR_ACCESS_TOKEN"],
            int(os.environ.get("FLOOR_POOL_SIZE", "10")),
        )


@dataclass
class FloorState:
    config: FloorConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    upstream: httpx.AsyncClient


def floor_engine(config: FloorConfig) -> AsyncEngine:
    # tsprov's pool: same size, no overflow, a bounded wait.
    return create_async_engine(
        config.database_url, pool_size=config.pool_size, max_overflow=0, pool_timeout=5
    )


async def create_schema(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(FloorBase.metadata.create_all)
    finally:
        await engine.dispose()


def audit_row(action: str, request: FloorRequest, **detail: Any) -> FloorAudit:
    return FloorAudit(
        event_time=datetime.now(UTC),
        action=action,
        target_id=str(request.id),
        user_id=request.user_id,
        detail=detail,
    )


async def create_request(state: FloorState, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    request = FloorRequest(
        id=uuid.uuid4(),
        user_id=user_id,
        status="ready",
        hostname=body.get("hostname"),
        created_at=now,
        updated_at=now,
    )
    async with state.sessions() as session, session.begin():
        session.add(request)
        session.add(audit_row("PROVISIONING_REQUEST.CREATE", request, status="ready"))
    return {"id": str(request.id), "user_id": user_id, "status": "ready"}


async def mark_minting(state: FloorState, request_id: uuid.UUID) -> FloorRequest | None:
    """Lock the ready request and mark it, in one statement; None when it is not ready."""
    mark = (
        update(FloorRequest)
        .where(FloorRequest.id == request_id, FloorRequest.status == "ready")
        .values(status="minting", mint_started_at=datetime.now(UTC))
        .returning(FloorRequest)
    )
    async with state.sessions() as session, session.begin():
        return await session.scalar(mark)


async def mint_key(state: FloorState, request: FloorRequest) -> dict[str, Any]:
    body = {
        "capabilities": {"devices": {"create": {"reusable": False, "preauthorized": False}}},
        "expirySeconds": 3600,
        "description": f"floor-{request.id.hex[:16]}",
    }
    answer = await state.upstream.post(
        f"{state.config.sandbox_url}/api/v2/tailnet/-/keys",
        json=body,
        headers={"Authorization": f"Bearer {state.config.access_token}"},
    )
    answer.raise_for_status()
    minted: dict[str, Any] = answer.json()
    return minted


async def store_outcome(state: FloorState, request: FloorRequest, minted: dict[str, Any]) -> None:
    expires = datetime.fromisoformat(minted["expires"])
    store = (
        update(FloorRequest)
        .where(FloorRequest.id == request.id)
        .values(status="claimed", key_id=minted["id"], key_expires_at=expires,
                updated_at=datetime.now(UTC))
    )  # fmt: skip
    async with state.sessions() as session, session.begin():
        await session.execute(store)
        session.add(audit_row("API_KEY.CREATE", request, key_id=minted["id"]))


async def claim_request(state: FloorState, request_id: uuid.UUID) -> JSONResponse:
    request = await mark_minting(state, request_id)
    if request is None:
        return JSONResponse({"code": "not_ready"}, status_code=409)
    try:
        minted = await mint_key(state, request)
    except httpx.HTTPError as exc:
        log.warning("mint failed upstream: %s", type(exc).__name__)
        return JSONResponse({"code": "upstream_unavailable"}, status_code=502)
    await store_outcome(state, request, minted)
    answer = {"auth_key": minted["key"], "expires_at": minted["expires"]}
    return JSONResponse(answer, headers=NO_STORE)


def create_app(config: FloorConfig | None = None) -> FastAPI:
    """The floor app; its configuration from FLOOR_* variables unless given."""
    settings = config or FloorConfig.from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = floor_engine(settings)
        upstream = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))
        # As tsprov's: rows stay readable after commit, flushes happen when asked.
        sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        app.state.floor = FloorState(settings, engine, sessions, upstream)
        try:
            yield
        finally:
            await upstream.aclose()
            await engine.dispose()

    app = FastAPI(title="floor", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/users/{user_id}/provisioning-requests", status_code=201)
    async def create(
        user_id: str, request: Request, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        return await create_request(request.app.state.floor, user_id, body)

    @app.post("/v1/provisioning-requests/{request_id}/claim")
    async def claim(request_id: uuid.UUID, request: Request) -> JSONResponse:
        return await claim_request(request.app.state.floor, request_id)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=1)
    arguments = parser.parse_args()
    uvicorn.run(
        "benchmarks.floor_app:create_app",
        factory=True,
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
