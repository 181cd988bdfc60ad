"""Every table's SQL lives in the one module that owns it; other domains call that module.

The check reads the source: a ``select``/``update``/``insert``/``delete``, a
``session.get``, a raw ``text()`` naming a table, or a new row built from a model class
counts as touching the table, and anywhere but its owner it fails the test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from service import models  # noqa: F401  (registers every table on Base)
from service.db import Base

SERVICE = Path(__file__).resolve().parents[2] / "service"
# Every audit table's SQL is in one module: appending, sealing, walking the chain, reading
# pages, linking and pruning all go through it.
OWNERS: dict[str, str] = {
    "caller": "callers/store.py",
    "idempotency_record": "callers/idempotency.py",
    "user_account": "users/store.py",
    "consent_grant": "grants/store.py",
    "provisioning_request": "provisioning/store/",
    "consent_flow": "consent/flow.py",
    "background_run": "jobs.py",
    "audit_event": "audit/store/",
    "audit_checkpoint": "audit/store/",
    "audit_link": "audit/store/",
    "audit_seal": "audit/store/",
    "audit_signed_checkpoint": "audit/store/",
    "webhook_endpoint": "webhooks/store.py",
    "webhook_event": "webhooks/outbox.py",
    "webhook_delivery": "webhooks/outbox.py",
}
# Infrastructure that touches every table by design: the schema itself, the role grants,
# and re-sealing every secret column under a new key.
EXEMPT = {"models.py", "ops/app_role.py", "crypto/rewrap.py", "crypto/sealed.py"}
STATEMENTS = {"select", "update", "insert", "delete"}
MODEL_TABLES: dict[str, str] = {
    mapper.class_.__name__: mapper.class_.__tablename__ for mapper in Base.registry.mappers
}


def _names_in(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def _tables_touched(call: ast.Call) -> set[str]:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    if name in MODEL_TABLES:  # a new row: Model(...)
        return {MODEL_TABLES[name]}
    if name in STATEMENTS or (name == "get" and isinstance(func, ast.Attribute)):
        argument_names = set().union(*(_names_in(arg) for arg in call.args))
        return {MODEL_TABLES[n] for n in argument_names if n in MODEL_TABLES}
    if name == "text":
        sql = " ".join(
            arg.value
            for arg in call.args
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        )
        return {table for table in OWNERS if re.search(rf"\b{table}\b", sql)}
    return set()


def stray_queries(source: str, module: str) -> list[str]:
    """``table: module:line`` for every touch of a table outside its owner."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        for table in _tables_touched(node):
            if not module.startswith(OWNERS[table]):
                found.append(f"{table}: {module}:{node.lineno}")
    return found


def test_every_table_has_an_owner() -> None:
    assert set(MODEL_TABLES.values()) == set(OWNERS)
    for owner in OWNERS.values():
        assert (SERVICE / owner).exists(), owner


def test_no_module_queries_a_table_it_does_not_own() -> None:
    strays = []
    for path in sorted(SERVICE.rglob("*.py")):
        module = path.relative_to(SERVICE).as_posix()
        if module not in EXEMPT:
            strays.extend(stray_queries(path.read_text(), module))
    assert strays == []


@pytest.mark.parametrize(
    "stray",
    [
        "await session.scalar(select(ProvisioningRequest).where(ProvisioningRequest.id == x))",
        "await session.execute(update(ConsentGrant).values(status='revoked'))",
        "await session.get(Caller, caller_id)",
        "session.add(UserAccount(user_id='alice'))",
        "await session.execute(text('DELETE FROM consent_flow'))",
    ],
)
def test_the_check_catches_a_stray_query(stray: str) -> None:
    assert stray_queries(f"async def f():\n    {stray}\n", "web/deps.py") != []
