"""Scope arithmetic: a scope grants itself, its `:read` form and every narrower scope."""

from collections.abc import Iterable


def scope_grants(granted: str, required: str) -> bool:
    """True when holding `granted` permits what `required` names."""
    if granted in ("all", required):
        return True
    if granted == "all:read":
        return required.endswith(":read")
    return required.startswith(granted + ":")


def scopes_allow(granted: Iterable[str], required: str) -> bool:
    """True when any held scope permits `required`."""
    return any(scope_grants(scope, required) for scope in granted)


def split_scope(text: str) -> list[str]:
    """Split an OAuth `scope` parameter (space-separated) into its scopes."""
    return [scope for scope in text.split(" ") if scope]
