"""Field types every API body and path shares: user ids, names, free text that stays one line."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, StringConstraints

USER_ID_PATTERN = r"^[A-Za-z0-9._@+-]{1,128}$"
UserId = Annotated[
    str,
    StringConstraints(pattern=USER_ID_PATTERN),
    Path(description="The person's id, as callers name them.", examples=["alice@example.com"]),
]
Hostname = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
]
Description = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 -]{1,50}$")]
ReturnTo = Annotated[str, StringConstraints(pattern=r"^/[\x21-\x7e]{0,511}$")]
Tag = Annotated[str, StringConstraints(pattern=r"^tag:[A-Za-z0-9-]{1,64}$")]
# Free text refuses C0 and C1 controls and DEL, the Unicode line and paragraph separators
# (log lines and audit views must stay one line whatever the input) and the bidi embedding,
# override and isolate marks (they reorder what an operator reads).
UNPRINTABLE = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
LoginName = Annotated[str, StringConstraints(pattern=rf"^[^{UNPRINTABLE}\s]{{1,320}}$")]
DisplayName = Annotated[str, StringConstraints(pattern=rf"^[^{UNPRINTABLE}]{{1,200}}$")]
# Audit filters and Tailscale ids: bounded and printable, so no NUL or control character
# reaches a query and no megabyte of input is matched against every row.
SearchTerm = Annotated[str, StringConstraints(pattern=rf"^[^{UNPRINTABLE}]{{1,320}}$")]
NodeId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$"),
    Path(description="Tailscale's stable node id.", examples=["nA1b2C3CNTRL"]),
]


class StrictBody(BaseModel):
    """Unknown fields are refused (a typo must not be silently ignored), and values are taken
    as their JSON type only: "yes" is not a boolean, "5" is not a number."""

    model_config = ConfigDict(extra="forbid", strict=True)
