"""The joined device as a caller reads it, including whether it still waits for approval."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from scripted import NOW, REQUEST_ID, Script, request_body

from tsprov_client import Client


def device(**members: Any) -> dict[str, Any]:
    return {"node_id": "nAbc1CNTRL", "name": "box.tail1.ts.net", "user": "a@b", "joined_at": NOW,
            **members}  # fmt: skip


@pytest.mark.parametrize(
    ("members", "authorized"),
    [({"authorized": False}, False), ({"authorized": True}, True), ({}, None)],
)
def test_a_waiting_device_reads_as_not_authorized(
    members: dict[str, Any], authorized: bool | None
) -> None:
    body = request_body("joined", device=device(**members))
    script = Script(httpx.Response(200, json=body))
    with Client("http://tsprov.test", "tsprov_testkey", transport=script.transport()) as client:
        request = client.get_request(REQUEST_ID)
    assert request.device is not None
    assert (request.device.node_id, request.device.authorized) == ("nAbc1CNTRL", authorized)
