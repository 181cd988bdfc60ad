"""The audit trail's answers, with the examples the OpenAPI document shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_EVENT: dict[str, Any] = {
    "id": "0b7c2a52-3f43-4a4b-9d0e-6a1f8f0c7a11",
    "eventTime": "2026-11-28T20:15:03.120455Z",
    "type": "CONFIG",
    "deferredAt": "0001-01-01T00:00:00Z",
    "eventGroupID": "5d0f7a0e-2b1c-4a8e-9f61-0c4b8a3e9d27",
    "origin": "CONFIG_API",
    "actor": {
        "id": "7f1e9c1a-5d0b-4f0e-a3f4-2c9d8e7b6a50",
        "type": "OAUTH_CLIENT",
        "loginName": "devbox-service",
        "displayName": "devbox-service",
        "tags": [],
    },
    "target": {
        "id": "3c9a4b1e-8f2d-4e6a-b5c7-1d0e9f8a7b6c",
        "name": "alice@example.com",
        "type": "PROVISIONING_REQUEST",
        "isEphemeral": False,
        "property": "STATUS",
    },
    "action": "UPDATE",
    "old": "ready",
    "new": "claimed",
    "actionDetails": "",
    "error": "",
    "userId": "alice@example.com",
    "eventName": "PROVISIONING_REQUEST.UPDATE",
    "prevHash": "9f2c" + "0" * 60,
    "hash": "41ab" + "0" * 60,
}


class AuditLogPage(BaseModel):
    """Tailscale's ``/logging/configuration`` envelope plus ``next_cursor``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"version": "1.1", "tailnet": "example.com", "logs": [EXAMPLE_EVENT],
                 "next_cursor": None}
            ]
        }
    )  # fmt: skip

    version: str = Field(description="The log format's version, as Tailscale's.")
    tailnet: str = Field(description="The tailnet the events belong to.")
    logs: list[dict[str, Any]] = Field(
        description="The events, in time order, each shaped as Tailscale's configuration log."
    )
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class ChainReportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "checked": 1204, "pending": 3, "checkpoint": 1190,
                 "first_bad_event": None, "reason": None},
                {"ok": False, "checked": 17, "pending": 0, "checkpoint": None,
                 "first_bad_event": EXAMPLE_EVENT["id"],
                 "reason": "edited: its content no longer matches its hash"},
            ]
        }
    )  # fmt: skip

    ok: bool = Field(description="True when no event was edited, removed or reordered.")
    checked: int = Field(description="Sealed events walked and found sound")
    pending: int = Field(description="Events recorded but not yet sealed into the chain")
    checkpoint: int | None = Field(description="count of the newest signed checkpoint reached")
    first_bad_event: str | None = Field(description="The first event that breaks the chain.")
    reason: str | None = Field(description="How it breaks the chain.")


EXAMPLE_CHECKPOINT: dict[str, Any] = {
    "seq": 1207,
    "count": 1204,
    "hash": "41ab" + "0" * 60,
    "time": "2026-11-28T20:15:08.000311Z",
    "key_id": "3f9a0c51d2e47b86",
    "signature": "9c" * 64,
}


class SignedCheckpointOut(BaseModel):
    """The chain's head after a sealing round, signed with Ed25519 over ``seq``, ``count``,
    ``hash`` and ``time`` as RFC 8785 JSON."""

    seq: int = Field(description="The seq of the event at the chain's head.")
    count: int = Field(description="How many events the chain held, from its start.")
    hash: str = Field(description="The head's chain hash, hex.")
    time: str = Field(description="When the checkpoint was signed (RFC 3339).")
    key_id: str = Field(description="Which signing key signed it.")
    signature: str = Field(description="Ed25519 over seq, count, hash and time, hex.")


class CheckpointPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_CHECKPOINT], "next_cursor": None}]}
    )

    items: list[SignedCheckpointOut] = Field(description="Checkpoints on this page.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
