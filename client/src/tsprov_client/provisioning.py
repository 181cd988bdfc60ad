"""What ``provision`` decides at each step, shared by the sync and async clients."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta

from tsprov_client.calls import MAX_WAIT_SECONDS, RequestOptions
from tsprov_client.errors import AlreadyClaimed, error_for_ended_request
from tsprov_client.models import Claim, Provisioned, ProvisioningRequest
from tsprov_client.retries import Deadline, RetryPolicy

ConsentCallback = Callable[[str], object]
AsyncConsentCallback = Callable[[str], Awaitable[object] | object]
DEFAULT_WAIT = timedelta(minutes=10)


class ConsentWatch:
    """One provision's wait: its deadline, and the consent link last handed out.

    A link is handed out again only when it changes (tsprov issues a fresh one when an
    earlier consent is undone).
    """

    def __init__(self, wait: timedelta, shown: str | None = None) -> None:
        if wait.total_seconds() < 0:
            raise ValueError("wait must not be negative")
        self.deadline = Deadline(wait.total_seconds())
        self.shown = shown

    def is_ready(self, request: ProvisioningRequest) -> bool:
        """True when the key can be claimed; raises when it never will be."""
        if request.is_final:
            raise error_for_ended_request(request)
        if request.status in ("claimed", "joined"):
            raise AlreadyClaimed(f"the request was already {request.status} by another call")
        return request.status == "ready"

    def new_link(self, request: ProvisioningRequest) -> str | None:
        """The request's consent link when it was not handed out yet, else ``None``."""
        link = request.consent_url
        if link is None or link == self.shown:
            return None
        self.shown = link
        return link

    def poll_seconds(self) -> int:
        """How long the next long-poll may hold: up to the server's limit, never past the wait."""
        return max(1, min(MAX_WAIT_SECONDS, math.ceil(self.deadline.remaining())))

    def call_deadline(self, policy: RetryPolicy) -> Deadline:
        """Retries of one poll may use the whole wait, and at least the policy's deadline."""
        call = policy.new_deadline()
        call.at = max(call.at, self.deadline.at)
        return call


def device_options(
    options: RequestOptions | None, hostname: str | None, tags: Sequence[str]
) -> RequestOptions:
    """``options`` with ``provision``'s own ``hostname`` and ``tags`` where those were given."""
    base = options or RequestOptions()
    return replace(base, hostname=hostname or base.hostname, tags=tuple(tags) or base.tags)


def provisioned(request: ProvisioningRequest, claim: Claim, consent_url: str | None) -> Provisioned:
    return Provisioned(
        request_id=request.id,
        user_id=request.user_id,
        hostname=request.hostname,
        login_name=request.grant.login_name if request.grant else None,
        auth_key=claim.auth_key,
        expires_at=claim.expires_at,
        tailscale_up=claim.tailscale_up,
        consent_url=consent_url,
    )
