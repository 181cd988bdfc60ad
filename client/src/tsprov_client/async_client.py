"""The asynchronous client: ``Client``'s API, awaited."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import TypeVar

import httpx

from tsprov_client import calls
from tsprov_client.calls import Call, RequestOptions
from tsprov_client.errors import (
    ConsentPending,
    ConsentTimeout,
    NotReady,
    TsprovError,
)
from tsprov_client.models import Claim, Page, Provisioned, ProvisioningRequest, User
from tsprov_client.provisioning import (
    DEFAULT_WAIT,
    AsyncConsentCallback,
    ConsentWatch,
    device_options,
    provisioned,
)
from tsprov_client.retries import Deadline, RetryPolicy, is_retryable
from tsprov_client.wire import caller_headers, error_from_response, transport_error

T = TypeVar("T")


class AsyncClient:
    """A caller of tsprov's API (``/v1``), with the caller key ``api_key``; see ``Client``.

    ``on_consent_url`` callbacks may be plain functions or coroutine functions.

    Every call is retried on 429, 503 and lost connections within ``retry``'s deadline;
    POSTs carry one Idempotency-Key for all their attempts. ``transport`` replaces httpx's
    network transport (for tests and proxies).
    """

    def __init__(
        self,
        server_url: str,
        api_key: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.server_url,
            headers=caller_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"AsyncClient({self.server_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, call: Call[T], deadline: Deadline | None = None) -> T:
        """Send ``call``, retrying what may pass, until it succeeds or must fail."""
        deadline = deadline or self.retry.new_deadline()
        attempt = 0
        while True:
            attempt += 1
            answer = await self._attempt(call)
            if not isinstance(answer, TsprovError):
                return call.read(answer)
            if not is_retryable(answer):
                raise answer
            delay = self.retry.next_delay(attempt, answer.retry_after, deadline)
            if delay is None:
                raise answer
            await asyncio.sleep(delay)

    async def _attempt(self, call: Call[T]) -> httpx.Response | TsprovError:
        timeout = httpx.Timeout(self._timeout, read=call.read_timeout or self._timeout)
        try:
            response = await self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.body,
                headers=call.headers(),
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            return transport_error(exc, self.server_url)
        return response if response.is_success else error_from_response(response)

    async def create_request(
        self,
        user_id: str,
        options: RequestOptions | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> ProvisioningRequest:
        """Ask for a device for ``user_id``: ``ready`` at once, or ``awaiting_consent``."""
        return await self._run(
            calls.create_request(user_id, options or RequestOptions(), idempotency_key)
        )

    async def get_request(self, request_id: str, *, wait_seconds: int = 0) -> ProvisioningRequest:
        """The request; ``wait_seconds`` (≤ 30) holds the answer until its status changes."""
        return await self._run(calls.get_request(request_id, wait_seconds))

    async def list_requests(
        self,
        user_id: str,
        *,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[ProvisioningRequest]:
        """A user's requests, newest first, one page at a time."""
        return await self._run(calls.list_requests(user_id, status, limit, cursor))

    async def claim(self, request_id: str, *, idempotency_key: str | None = None) -> Claim:
        """Collect the key, exactly once; a retry with the same key replays the answer."""
        return await self._run(calls.claim(request_id, idempotency_key))

    async def cancel(self, request_id: str) -> None:
        """Cancel an open request; any key it holds is wiped."""
        await self._run(calls.cancel(request_id))

    async def put_user(
        self, user_id: str, *, tailscale_login: str | None = None, display_name: str | None = None
    ) -> User:
        """Create or update a user (``admin`` scope)."""
        return await self._run(calls.put_user(user_id, tailscale_login, display_name))

    async def get_user(self, user_id: str) -> User:
        """A user and their grants' metadata."""
        return await self._run(calls.get_user(user_id))

    async def provision(
        self,
        user_id: str,
        *,
        hostname: str | None = None,
        tags: Sequence[str] = (),
        options: RequestOptions | None = None,
        wait: timedelta = DEFAULT_WAIT,
        on_consent_url: AsyncConsentCallback | None = None,
        cancel_on_timeout: bool = True,
    ) -> Provisioned:
        """Create a request, get consent, claim: the whole job in one call.

        The consent link goes to ``on_consent_url`` (again if tsprov replaces it); without a
        callback a request that needs consent raises ``ConsentPending`` carrying the link,
        and ``collect`` finishes the job. Waits with long-polls until ``wait`` runs out
        (``ConsentTimeout``; the request is cancelled unless ``cancel_on_timeout`` is off).
        A request that ends raises a ``RequestEnded`` subclass with its ``failure``.
        """
        request = await self.create_request(user_id, device_options(options, hostname, tags))
        if request.status == "awaiting_consent" and on_consent_url is None:
            raise ConsentPending(request)
        return await self._collect(request, ConsentWatch(wait), on_consent_url, cancel_on_timeout)

    async def collect(
        self,
        request_id: str,
        *,
        wait: timedelta = DEFAULT_WAIT,
        on_consent_url: AsyncConsentCallback | None = None,
        cancel_on_timeout: bool = False,
    ) -> Provisioned:
        """Wait for consent on an existing request, then claim it (after ``ConsentPending``).

        The caller already has the request's current link; ``on_consent_url`` hears only of
        a link that replaces it.
        """
        request = await self.get_request(request_id)
        watch = ConsentWatch(wait, shown=request.consent_url)
        return await self._collect(request, watch, on_consent_url, cancel_on_timeout)

    async def _collect(
        self,
        request: ProvisioningRequest,
        watch: ConsentWatch,
        on_consent_url: AsyncConsentCallback | None,
        cancel_on_timeout: bool,
    ) -> Provisioned:
        while True:
            request = await self._wait_until_ready(
                request, watch, on_consent_url, cancel_on_timeout
            )
            try:
                return provisioned(request, await self.claim(request.id), watch.shown)
            except NotReady as error:
                # It moved on between the read and the claim (an undone consent sends it
                # back to awaiting consent with a new link): follow it from where it is.
                request = await self.get_request(request.id)
                if request.status == "ready":
                    raise error from None

    async def _wait_until_ready(
        self,
        request: ProvisioningRequest,
        watch: ConsentWatch,
        on_consent_url: AsyncConsentCallback | None,
        cancel_on_timeout: bool,
    ) -> ProvisioningRequest:
        while not watch.is_ready(request):
            link = watch.new_link(request)
            if link is not None and on_consent_url is not None:
                shown = on_consent_url(link)
                if inspect.isawaitable(shown):
                    await shown
                # The callback may have taken long, or even seen the consent through: look
                # again, or the long-poll would hold an answer that has already changed.
                request = await self.get_request(request.id)
                continue
            if watch.deadline.passed:
                raise await self._time_out(request, cancel_on_timeout)
            poll = calls.get_request(request.id, watch.poll_seconds())
            request = await self._run(poll, watch.call_deadline(self.retry))
        return request

    async def _time_out(self, request: ProvisioningRequest, cancel: bool) -> ConsentTimeout:
        if cancel:
            try:
                await self.cancel(request.id)
            except TsprovError:
                return ConsentTimeout(request, cancelled=False)
        return ConsentTimeout(request, cancelled=cancel)
