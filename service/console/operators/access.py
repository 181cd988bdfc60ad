"""Who may enter /console: a signed-in tailnet user whose login matches CONSOLE_ADMINS."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from service.console.errors import ConsolePageError
from service.console.identity import Person, SignedInDep, is_console_admin
from service.web.deps import ContextDep


async def require_operator(person: SignedInDep, context: ContextDep) -> Person:
    """The operator; anyone else signed in gets a plain 403 page, and nothing is read."""
    if not is_console_admin(context.settings, person.login):
        raise ConsolePageError(
            403,
            "Operators only",
            f"You are signed in to the tailnet as {person.login}, which is not among the "
            "operators this tsprov lets into its console (TSPROV_CONSOLE_ADMINS).",
            "Your own requests, grants and devices are on your page, /me.",
        )
    return person


OperatorDep = Annotated[Person, Depends(require_operator)]
