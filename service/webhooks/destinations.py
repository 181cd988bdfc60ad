"""Where a webhook may go: the guard against using tsprov to reach inside its own network.

A URL is checked when it is registered and again before every attempt, on the addresses its
host resolves to at that moment; the attempt then connects to the address that was checked
(TLS still verifies the host name), so a name that re-resolves elsewhere in between is no
way around the check. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx

from service.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Shared address space (RFC 6598): carrier NAT, and the tailnet's own addresses.
SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")
# Cloud metadata services, named so that the refusal says what it protects.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})


class RefusedDestination(ValueError):
    """A webhook URL tsprov will not send to; the message says why and how to allow it."""


@dataclass(frozen=True)
class Target:
    """One checked address to connect to, and the host name the request is for."""

    url: httpx.URL
    host_header: str
    sni_hostname: str | None


def address_refusal(address: IPAddress, settings: Settings) -> str | None:
    """Why ``address`` is refused, or None when a webhook may go there."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    allowed = (ipaddress.ip_network(n, strict=False) for n in settings.webhook_allowed_networks)
    if any(address.version == network.version and address in network for network in allowed):
        return None
    if address.is_loopback:
        return None if settings.env == "development" else "a loopback address"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.version == 4 and address in SHARED_SPACE:
        return "a shared (carrier-NAT or tailnet) address"
    if address.is_private or address.is_reserved or address.is_unspecified:
        return "a private or reserved address"
    if address.is_multicast or not address.is_global:
        return "not a public unicast address"
    return None


def parse_webhook_url(url: str) -> SplitResult:
    """The URL's parts, when it has a host and no credentials or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise RefusedDestination("a webhook URL is https://host/path")
    if parts.username is not None or parts.password is not None:
        raise RefusedDestination("a webhook URL carries no user name or password")
    if parts.fragment:
        raise RefusedDestination("a webhook URL has no #fragment")
    return parts


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to now (an address literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RefusedDestination(f"the host {host} does not resolve") from exc
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))


async def check_destination(url: str, settings: Settings) -> Target:
    """The address to send to, after checking every address the host resolves to."""
    parts = parse_webhook_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(host, port)
    for address in addresses:
        reason = address_refusal(address, settings)
        if reason is not None:
            raise RefusedDestination(
                f"{host} resolves to {reason}; list its network in "
                "TSPROV_WEBHOOK_ALLOWED_NETWORKS to allow it"
            )
    local = all(address.is_loopback for address in addresses) or host in LOCAL_NAMES
    if parts.scheme != "https" and not (local and settings.env == "development"):
        raise RefusedDestination(
            "a webhook URL must be https (plain http only to loopback in development)"
        )
    pinned = httpx.URL(url).copy_with(host=str(addresses[0]))
    is_name = not _is_address(host)
    return Target(pinned, parts.netloc, host if is_name and parts.scheme == "https" else None)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
