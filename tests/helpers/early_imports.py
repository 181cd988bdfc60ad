"""Modules that Hypothesis and Schemathesis import lazily, mid-test, imported up front.

pytest rewrites the asserts of every module of a pytest plugin's package (both libraries are
plugins), so their first import runs ``ast.parse``. Python 3.11 before 3.11.8 keeps the
parser's recursion count in one shared place (CPython gh-106905): a parse that overlaps
another one, in a server thread formatting a logged traceback or in a finaliser run by the
garbage collector, fails with "AST constructor recursion depth mismatch". Importing these at
collection, before any server thread starts, leaves nothing to parse while the tests run.
"""

from __future__ import annotations

import importlib
import importlib.util

LAZILY_IMPORTED = (
    "hypothesis.internal.conjecture.optimiser",
    "hypothesis.strategies._internal.random",
    "schemathesis.engine.errors",
    "schemathesis.generation.body_overrides",
    "schemathesis.specs.openapi.object_authorization",
    "schemathesis.wfc.escalation",
)


def import_lazy_modules_now() -> None:
    for name in LAZILY_IMPORTED:
        # A module a newer release moved or dropped has nothing left to import lazily.
        parent = name.rpartition(".")[0]
        if importlib.util.find_spec(parent) is not None and importlib.util.find_spec(name):
            importlib.import_module(name)
