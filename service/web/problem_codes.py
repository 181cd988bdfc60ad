"""The catalogue of problem codes, derived from the problem classes: each code's status,
title and meaning are written once, on its class."""

from __future__ import annotations

from typing import Any

from service.web.errors import InternalError, ProblemError


def _problem_classes() -> dict[str, type[ProblemError]]:
    """Every problem code and the one class that defines its status, title and meaning."""
    found: dict[str, type[ProblemError]] = {}
    pending: list[type[ProblemError]] = [ProblemError]
    while pending:
        kind = pending.pop()
        found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found


PROBLEMS = _problem_classes()
ERROR_CODES: dict[str, str] = {code: kind.meaning for code, kind in PROBLEMS.items()}
ERROR_STATUS: dict[str, int] = {code: kind.status for code, kind in PROBLEMS.items()}
PROBLEM_JSON = "application/problem+json"


def problem_for_code(code: str, detail: str, **kwargs: Any) -> ProblemError:
    """The problem a failure named by ``code`` (an upstream error's, say) answers with."""
    return PROBLEMS.get(code, InternalError)(detail, **kwargs)
