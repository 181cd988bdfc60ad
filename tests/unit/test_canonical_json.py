"""The sealer's quick canonical rendering gives RFC 8785's bytes, or lets rfc8785 decide."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785

from service.audit.canonical import canonical_json

EVERY_CODE_POINT = [
    "".join(chr(point) for point in range(start, min(start + 4096, 0x110000))
            if not 0xD800 <= point <= 0xDFFF)
    for start in range(0, 0x110000, 4096)
]  # fmt: skip


def test_every_code_point_is_escaped_as_rfc_8785_escapes_it() -> None:
    for block in EVERY_CODE_POINT:
        assert canonical_json({"s": block}) == rfc8785.dumps({"s": block})


@pytest.mark.parametrize(
    "content",
    [
        {"b": 1, "a": [True, False, None, "x\u2028\x7f\x00"], "c": {"z": -(2**53 - 1)}},
        {"a": 0.1, "b": 1e21, "c": -0.0, "d": 5e-7},  # ES6 number forms the encoder does not write
        {"\u00e9": 1, "e": 2, "\U0001f600": 3, "\uffff": 4},  # sorted by UTF-16 code units
        {"n": [1, {"k": 2.5}]},
    ],
)
def test_the_quick_rendering_is_the_rfc_8785_rendering(content: dict[str, Any]) -> None:
    assert canonical_json(content) == rfc8785.dumps(content)


@pytest.mark.parametrize("content", [{"big": 2**53}, {"big": [-(2**64)]}, {"s": "\ud800"}])
def test_what_rfc_8785_cannot_write_is_still_refused(content: dict[str, Any]) -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json(content)
