"""Why a request ended without a device: a stable code and a fixed sentence per code.

The code is what ``failure_reason`` holds (a problem code such as ``identity_mismatch``,
or one named here); the message comes only from this table or the problem's own text, so
nothing a person or Tailscale typed, and no secret, ever reaches a caller through it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.models import ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.web.problem_codes import PROBLEMS

CONSENT_EXPIRED = "consent_expired"
KEY_EXPIRED = "key_expired"
CANCELLED = "cancelled"
USER_OFFBOARDED = "user_offboarded"
USER_DECLINED = "user_declined"
GRANT_WITHDRAWN = "grant_withdrawn"
FAILED = "failed"

MESSAGES: dict[str, str] = {
    CONSENT_EXPIRED: "Nobody approved the consent link before it expired. Create a new request "
    "and send the user its link.",
    KEY_EXPIRED: "The user approved, but the key was not claimed before it expired. Create a "
    "new request.",
    CANCELLED: "A caller cancelled the request, or the user's grant was revoked meanwhile.",
    USER_OFFBOARDED: "The user was offboarded: every open request of theirs was cancelled.",
    USER_DECLINED: "The user declined this request on their tsprov page (/me). Ask them before "
    "creating another.",
    GRANT_WITHDRAWN: "The user withdrew the consent this request relied on, on their tsprov "
    "page (/me). Create a new request if they still want the device.",
    FAILED: "The request failed; its audit trail says at which step.",
    "identity_mismatch": "The Tailscale account that approved (or joined) is not the one "
    "expected for this user. Nothing was handed out; ask the user to sign in as themselves "
    "on a new request.",
}


class RequestFailure(BaseModel):
    """Why a request ended without a device."""

    code: str = Field(
        description="Stable: `consent_expired`, `key_expired`, `cancelled`, `user_offboarded`, "
        "`user_declined`, `grant_withdrawn`, `failed`, or the problem code of the refusal "
        "(`identity_mismatch`, …).",
        examples=["identity_mismatch"],
    )
    message: str = Field(
        description="What happened and what to do, in a sentence; never holds input or secrets."
    )


def failure_message(code: str) -> str:
    """The fixed sentence for ``code``; a problem code falls back to its problem's meaning."""
    if code in MESSAGES:
        return MESSAGES[code]
    problem = PROBLEMS.get(code)
    return problem.meaning if problem is not None else MESSAGES[FAILED]


def request_failure(request: ProvisioningRequest) -> RequestFailure | None:
    """The failure of a request that ended ``failed``, ``expired`` or ``cancelled``."""
    if request.status == RequestStatus.FAILED:
        code = request.failure_reason or FAILED
    elif request.status == RequestStatus.EXPIRED:
        # A grant on the request means the user approved: it was the key that ran out.
        code = KEY_EXPIRED if request.grant_id is not None else CONSENT_EXPIRED
    elif request.status == RequestStatus.CANCELLED:
        code = request.failure_reason or CANCELLED
    else:
        return None
    return RequestFailure(code=code, message=failure_message(code))
