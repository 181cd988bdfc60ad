"""tsprov in-process with identity headers as a test chooses, reached from a chosen peer
address, plus one page and one action built on the console's pieces."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from service.console.actions import ActionDep, Confirmation, confirmation_page
from service.console.identity import PersonDep
from service.console.pages import message_page
from service.main import create_app
from service.state import AppContext

SERVE_HEADERS = {
    "Tailscale-User-Login": "alice@example.com",
    "Tailscale-User-Name": "Alice Example",
    "Tailscale-User-Profile-Pic": "https://login.tailscale.com/pic/alice.png",
}


def app_with_probe(context: AppContext, acted: list[str], **settings: Any) -> FastAPI:
    """The app, its settings changed, with /probe/whoami and an action at /probe/act."""
    changed = context.settings.model_copy(update=settings)
    app = create_app(context=dataclasses.replace(context, settings=changed))
    probe = APIRouter()

    @probe.get("/probe/whoami")
    async def whoami(request: Request, person: PersonDep) -> HTMLResponse:
        return message_page(request, 200, person.login if person else "nobody")

    @probe.post("/probe/act")
    async def act(request: Request, action: ActionDep) -> HTMLResponse:
        if not action.confirmed:
            return confirmation_page(
                request, Confirmation("Act?", "Something will be done.", "Do it")
            )
        acted.append(action.person.login)
        return message_page(request, 200, "Done")

    app.include_router(probe)
    return app


@asynccontextmanager
async def browser_from(app: FastAPI, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose TCP peer address, as tsprov sees it, is ``peer``."""
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://tsprov.test") as client:
        yield client
