"""The fuzzer: requests generated from tsprov's own OpenAPI description, sent to a real server.

Every operation is tried with valid and invalid data, as a caller holding every scope. The
default checks hold: no 5xx, every answer matches the description, invalid data is refused,
and a missing key is not ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from pydantic import SecretStr
from schemathesis.config import SchemathesisConfig

from service.main import create_app
from service.settings import Settings
from tests.fuzz.conftest import FuzzTarget

# The description does not depend on the settings: any valid ones will do to build it.
_DESCRIBED = create_app(
    Settings(
        env="development",
        database_url="postgresql://fuzz@127.0.0.1:9/fuzz",
        public_url="http://127.0.0.1:8000",
        oauth_client_id="fuzz",
        oauth_client_secret=SecretStr("fuzz-secret"),
    )
).openapi()
schema = schemathesis.openapi.from_dict(
    _DESCRIBED, config=SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
)
# The admin key of the running stack, set by ``bound_to_stack`` before any case is sent.
_CALLER_KEY: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class AdminKey:
    """Schemathesis adds the key itself, so it can also leave it out on purpose (the check
    that a route refuses a request without one)."""

    def get(self, case: Any, ctx: Any) -> str | None:
        return _CALLER_KEY.get("key")

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(autouse=True)
def bound_to_stack(fuzz_target: FuzzTarget) -> None:
    _CALLER_KEY["key"] = fuzz_target.auth["Authorization"].removeprefix("Bearer ")


@schema.hook
def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """A long-poll holds its answer up to ``wait_seconds``: keep generated waits to a second,
    so the budget buys examples rather than sleep (the cap itself is tested elsewhere)."""
    if query and isinstance(query.get("wait_seconds"), int) and query["wait_seconds"] > 1:
        return {**query, "wait_seconds": 1}
    return query


# A bounded budget: about a minute for every operation together.
BUDGET = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@BUDGET
def test_every_operation_answers_generated_requests_soundly(
    case: Any, fuzz_target: FuzzTarget
) -> None:
    case.call_and_validate(base_url=fuzz_target.url)


def test_the_provisioning_links_hold_in_any_order(fuzz_target: FuzzTarget) -> None:
    """Create, read, claim and cancel requests in generated sequences, following the links."""
    machine = schema.as_state_machine()

    class AgainstTheStack(machine):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": fuzz_target.url}

    # Generation only: the server's state moves on between runs, so a replayed or shrunk
    # sequence would not meet the same answers (Hypothesis would call that flaky).
    AgainstTheStack.run(
        settings=settings(
            max_examples=12,
            stateful_step_count=5,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
