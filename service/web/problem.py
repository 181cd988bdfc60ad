"""The problem body (RFC 9457) as the OpenAPI description shows it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    """One refused field."""

    loc: list[str] = Field(description="Where: body, query, path or header, then the field.")
    msg: str = Field(description="Why it was refused; the rejected value is never echoed.")


class Problem(BaseModel):
    """An error answer (RFC 9457), served as `application/problem+json`."""

    type: str = Field(
        description="A page tsprov serves: what the code means and what to do.",
        examples=["/problems/not_found"],
    )
    title: str = Field(description="The code in a few words.")
    status: int = Field(description="The HTTP status, repeated.")
    detail: str = Field(description="This occurrence, in a sentence; never echoes input.")
    code: str = Field(description="Stable; the API description's table lists every code.")
    errors: list[FieldError] | None = Field(
        default=None, description="With `validation_failed`: each refused field and why."
    )
    request_status: str | None = Field(
        default=None, description="With `not_ready`: the provisioning request's status."
    )
