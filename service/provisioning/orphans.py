"""Keys a mint may have left live at Tailscale when its outcome never reached tsprov.

A settled mint's key, if Tailscale made one, reached nobody, yet it is a live credential of
the user's until it expires. tsprov finds it by the description the mint gave it
(``tsprov-<request>``) and deletes it: with the observer where it may list and delete keys,
else with the grant's own token. What happened is said in words for the audit.
"""

from __future__ import annotations

import uuid

from pydantic import SecretStr

from service.grants.refresh import access_token_for
from service.state import AppContext
from service.tailscale.client import TailscaleError, UpstreamRefused
from service.tailscale.wire import ListedKey
from service.web.errors import ProblemError


async def delete_orphan_keys(
    context: AppContext, description: str, grant_id: uuid.UUID | None, keep: str | None = None
) -> str:
    """Delete the live keys named ``description`` at Tailscale but ``keep`` (the one handed
    out); say what was done. Called under the request's row lock with no mint in flight."""
    try:
        token, found = await _find_described(context, description, grant_id)
        found = [key_id for key_id in found if key_id != keep]
    except (TailscaleError, ProblemError) as exc:
        return (
            f"could not look for its key at Tailscale ({_why(exc)}); a key Tailscale made "
            "reached nobody and expires there on its own"
        )
    if not found:
        return f"no live key named {description} was found at Tailscale"
    try:
        for key_id in found:
            await context.tailscale.delete_key(key_id, token)
    except TailscaleError as exc:
        return (
            f"its key {', '.join(found)} was found at Tailscale but could not be deleted "
            f"({_why(exc)}); it reached nobody and expires there on its own"
        )
    return f"its key {', '.join(found)} was found at Tailscale, reached nobody, and was deleted"


async def _find_described(
    context: AppContext, description: str, grant_id: uuid.UUID | None
) -> tuple[SecretStr | None, list[str]]:
    """The live keys named ``description``, and the token (None: the observer) that saw them."""
    if context.tailscale.has_observer:
        try:
            return None, _described(await context.tailscale.list_keys(None), description)
        except UpstreamRefused:
            if grant_id is None:
                raise  # the observer may not list keys, and there is no grant to ask with
    if grant_id is None:
        raise _NoCredential("no observer and no grant to look with")
    token = await access_token_for(context, grant_id)
    return token, _described(await context.tailscale.list_keys(token), description)


async def delete_dropped_key(context: AppContext, key_id: str, access_token: SecretStr) -> str:
    """Delete a key that tsprov minted and will not hand out; say what was done."""
    try:
        if context.tailscale.has_observer:
            try:
                await context.tailscale.delete_key(key_id)
                return "it was deleted at Tailscale"
            except UpstreamRefused:
                pass  # the observer may not delete user keys: the grant's token may
        await context.tailscale.delete_key(key_id, access_token)
    except TailscaleError as exc:
        return f"it could not be deleted at Tailscale ({_why(exc)}) and expires there on its own"
    return "it was deleted at Tailscale"


def _described(keys: list[ListedKey], description: str) -> list[str]:
    return [key.key_id for key in keys if key.description == description and not key.invalid]


class _NoCredential(TailscaleError):
    code = "no_credential"


def _why(exc: Exception) -> str:
    if isinstance(exc, UpstreamRefused):
        return f"Tailscale refused with {exc.status}"
    code = getattr(exc, "code", type(exc).__name__)
    return str(code)
