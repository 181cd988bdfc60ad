"""``tsprov webhooks add URL --event E … | list | remove ID``."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from service.audit.events import ORIGIN_API, Actor
from service.db import transaction
from service.settings import Settings
from service.webhooks import store
from service.webhooks.destinations import RefusedDestination
from service.webhooks.endpoints import register_endpoint
from service.webhooks.status import WebhookEventType

WithSessions = Callable[[Callable[[Any], Awaitable[int]]], int]
# An operator at the command line, named like the audit trail's other actors.
OPERATOR = Actor(id="cli", type="USER", login_name="tsprov-cli", display_name="tsprov CLI")


def add_parser(sub: Any, run: Callable[[argparse.Namespace], int]) -> None:
    webhooks = sub.add_parser("webhooks", help="webhook endpoints")
    actions = webhooks.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="register an endpoint; prints its secret last")
    add.add_argument(
        "url", help="https URL to send events to (http only to loopback in development)"
    )
    add.add_argument(
        "--event",
        action="append",
        required=True,
        choices=[str(event) for event in WebhookEventType],
        help="an event to send; repeat for more",
    )
    actions.add_parser("list", help="registered endpoints")
    remove = actions.add_parser("remove", help="remove an endpoint and its deliveries")
    remove.add_argument("id", type=uuid.UUID, help="the endpoint's id, as `webhooks list` shows it")
    webhooks.set_defaults(func=run)


def run(args: argparse.Namespace, with_sessions: WithSessions, settings: Settings) -> int:
    # Admin commands run with development settings (they need no OAuth secret); the
    # destination check must still follow the deployment's real environment.
    checked = settings.model_copy(update={"env": os.environ.get("TSPROV_ENV", "production")})
    if args.action == "add":
        return with_sessions(lambda sessions: _add(sessions, checked, args))
    if args.action == "remove":
        return with_sessions(lambda sessions: _remove(sessions, args.id))
    return with_sessions(_list)


async def _add(sessions: Any, settings: Settings, args: argparse.Namespace) -> int:
    from service.main import load_key_ring

    key_ring = load_key_ring(settings)
    if key_ring is None:
        print("tsprov: no encryption key: set TSPROV_ENCRYPTION_KEYS or _FILE", file=sys.stderr)
        return 1
    events = [WebhookEventType(event) for event in args.event]
    try:
        async with transaction(sessions) as session:
            endpoint, secret = await register_endpoint(
                session, settings, key_ring, args.url, events, actor=OPERATOR, origin=ORIGIN_API
            )
    except RefusedDestination as exc:
        print(f"tsprov: url refused: {exc}", file=sys.stderr)
        return 1
    print(f"registered webhook {endpoint.id} for {', '.join(endpoint.events)}")
    print(secret)  # shown once: the last line of stdout alone
    return 0


async def _list(sessions: Any) -> int:
    async with sessions() as session:
        for endpoint in await store.list_endpoints(session):
            print(f"{endpoint.id}\t{endpoint.status}\t{endpoint.url}\t{','.join(endpoint.events)}")
    return 0


async def _remove(sessions: Any, endpoint_id: uuid.UUID) -> int:
    async with transaction(sessions) as session:
        endpoint = await store.load_endpoint(session, endpoint_id, lock=True)
        if endpoint is None:
            print(f"tsprov: no webhook {endpoint_id}", file=sys.stderr)
            return 1
        await store.delete_endpoint(session, endpoint, actor=OPERATOR, origin=ORIGIN_API)
    print(f"removed webhook {endpoint_id}")
    return 0
