"""Statuses and modes are compared through their StrEnums, never as bare strings."""

from __future__ import annotations

import ast
from pathlib import Path

from service.grants.status import GrantMode, GrantStatus
from service.provisioning.status import RequestStatus

SERVICE = Path(__file__).resolve().parents[2] / "service"
VALUES = {member.value for enum in (RequestStatus, GrantStatus, GrantMode) for member in enum}
NAMES = {"status", "mode", "new_status", "old_status"}


def _named(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name in NAMES


def _literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value in VALUES


def bare_comparisons(source: str) -> list[int]:
    """Lines comparing a status or mode with a string literal."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_named(side) for side in sides) and any(_literal(side) for side in sides):
                lines.append(node.lineno)
    return lines


def test_no_status_or_mode_is_compared_with_a_bare_string() -> None:
    found = {
        path.relative_to(SERVICE).as_posix(): lines
        for path in SERVICE.rglob("*.py")
        if (lines := bare_comparisons(path.read_text()))
    }
    assert found == {}


def test_the_check_sees_a_bare_comparison() -> None:
    assert bare_comparisons('if request.status == "ready":\n    pass\n') == [1]
    assert bare_comparisons("if request.status == RequestStatus.READY:\n    pass\n") == []
