"""``tsprov-enroll``'s exit statuses, one per outcome a script may want to act on."""

from __future__ import annotations

from enum import IntEnum

from tsprov_client.errors import (
    ConsentTimeout,
    IdentityMismatch,
    IdentityUnverified,
    RequestCancelled,
    RequestExpired,
    TsprovError,
)


class ExitCode(IntEnum):
    JOINED = 0
    """Joined the tailnet (or, with ``--print-only``, printed the line)."""
    FAILED = 1
    """Any other failure: tsprov refused a call, could not be reached, or the request failed."""
    USAGE = 2
    """Bad arguments, or no caller key in ``TSPROV_API_KEY`` or ``--key-file``."""
    DECLINED = 3
    """The request was cancelled: declined by the person, or cancelled by a caller."""
    EXPIRED = 4
    """No consent in time: the consent window closed, or ``--wait`` ran out."""
    IDENTITY = 5
    """The Tailscale login that consented is not the user's, or could not be confirmed."""
    TAILSCALE_FAILED = 6
    """``tailscale up`` ran and failed; its own message is above."""
    INTERRUPTED = 130
    """Stopped with Ctrl-C; an open request was cancelled."""


def exit_code_for(error: TsprovError) -> ExitCode:
    """The status for an error that ended the enrolment."""
    if isinstance(error, IdentityMismatch | IdentityUnverified):
        return ExitCode.IDENTITY
    if isinstance(error, RequestCancelled):
        return ExitCode.DECLINED
    if isinstance(error, RequestExpired | ConsentTimeout):
        return ExitCode.EXPIRED
    return ExitCode.FAILED
