"""Every console action: a POST with the form's CSRF token, a confirmation, then the act.

A route takes ``action: ActionDep`` (the signed-in person, the token checked: a missing or
wrong one is a plain 403 page, and nothing was read or done) and, until the person has
confirmed, answers the question instead of acting::

    if not action.confirmed:
        return confirmation_page(request, Confirmation("Withdraw grant X?", ..., "Withdraw"))
    ...act, audited with person_actor(action.person)...

The confirmation page posts back to the same path with the token and ``confirmed=yes``; a
GET never reaches an action at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from service.audit.events import Actor
from service.console import csrf
from service.console.errors import ConsolePageError
from service.console.identity import Person, SignedInDep
from service.console.pages import render

CONFIRMED = "yes"


@dataclass(frozen=True)
class ConsoleAction:
    """A POST whose token matched the person's: ``confirmed`` once they said yes."""

    person: Person
    confirmed: bool


class ActionForm(BaseModel):
    """What an action's button sends: the page's token and, from the confirmation, `yes`."""

    # Not ``extra="forbid"``: a route's own form fields (offboarding's ``delete_devices``)
    # travel in the same form.
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"csrf_token": "…", "confirmed": "yes"}]}
    )

    csrf_token: str = Field(
        default="", max_length=128, description="The token of the page the form was on"
    )
    confirmed: str = Field(
        default="", max_length=8, description="`yes` from the confirmation page; else it asks"
    )


async def console_action(
    request: Request, person: SignedInDep, form: Annotated[ActionForm, Form()]
) -> ConsoleAction:
    """The checked action, or a 403 page when the token is missing or not this browser's."""
    if not csrf.token_valid(request, person.login, form.csrf_token):
        raise ConsolePageError(
            403,
            "Action not accepted",
            "This form did not come from a page tsprov showed you in this browser, so "
            "nothing was done. Open the page again and use its button.",
        )
    return ConsoleAction(person=person, confirmed=form.confirmed == CONFIRMED)


ActionDep = Annotated[ConsoleAction, Depends(console_action)]


@dataclass(frozen=True)
class Confirmation:
    """The question a confirmation page asks before anything happens."""

    question: str  # "Withdraw grant 1a2b…?"
    explanation: str  # what will happen, in a sentence or two
    button: str  # "Withdraw"
    facts: Sequence[tuple[str, str]] = ()
    back: tuple[str, str] = ("/me", "No, back to my page")  # (href, text)
    # Further hidden fields the action needs on its confirmed POST.
    fields: Mapping[str, str] = field(default_factory=dict)


def confirmation_page(request: Request, confirmation: Confirmation) -> HTMLResponse:
    """Asks; its form posts to this same path with the token and ``confirmed=yes``."""
    return render(
        request,
        "confirm.html",
        title=confirmation.question,
        tone="ask",
        confirmation=confirmation,
        action_path=request.url.path,
        confirmed=CONFIRMED,
    )


def person_actor(person: Person) -> Actor:
    """The audit trail's actor for a person signed in through Serve: their tailnet login."""
    return Actor(id=person.login, type="USER", login_name=person.login, display_name=person.name)
