"""The load generator: N callers, each creating and claiming requests back to back.

Every caller is a loop on its own ``httpx.AsyncClient`` holding one connection, as
independent clients would. One client shared by 32 callers spent more CPU in its connection
pool's bookkeeping than either app served with, and throttled both apps alike.

A level runs ``warmup`` seconds unmeasured, then ``seconds`` measured: a pair counts when it
completes inside the measured window, so throughput is completions per second and latency is
that of those pairs (create + claim, end to end).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from benchmarks.preparation import bearer

REQUEST_BODY = {"hostname": "bench-host"}
# Callers arrive this far apart during the warm-up, as independent clients would, each opening
# its connection then. Connections opened in the same millisecond all go to whichever worker
# wakes first on the shared socket, and a level measured that lottery: one run had one of
# tsprov's two workers doing 97 % of its work.
ARRIVAL_GAP = 0.02
# Idle connections are let go a second before the servers' own keep-alive (5 s) would close
# them: a request sent on a connection the server is closing that instant fails (ReadError)
# through no fault of either app.
ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=4.0)


@dataclass
class LevelResult:
    callers: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    unavailable: int = 0
    # each failed pair's HTTP status, or the client's exception, and how often
    failures: Counter[str] = field(default_factory=Counter)

    @classmethod
    def pooled(cls, results: list[LevelResult]) -> LevelResult:
        """Several runs of one level as one: their pairs, errors and seconds together."""
        pooled = cls(results[0].callers, sum(result.seconds for result in results))
        for result in results:
            pooled.latencies += result.latencies
            pooled.errors += result.errors
            pooled.unavailable += result.unavailable
            pooled.failures += result.failures
        return pooled

    @property
    def pairs_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, share: int) -> float:
        """The ``share``-th percentile of pair latency, in seconds."""
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[share - 1]


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    def holds(self, moment: float) -> bool:
        return self.start <= moment <= self.end


async def provision_pair(client: httpx.AsyncClient, key: str, user: str) -> int:
    """Create a request for ``user`` and claim it; 0 on success, else the failing status."""
    created = await client.post(
        f"/v1/users/{user}/provisioning-requests", headers=bearer(key), json=REQUEST_BODY
    )
    if created.status_code != 201 or created.json()["status"] != "ready":
        return created.status_code
    request_id = created.json()["id"]
    claimed = await client.post(
        f"/v1/provisioning-requests/{request_id}/claim", headers=bearer(key)
    )
    return 0 if claimed.status_code == 200 and claimed.json()["auth_key"] else claimed.status_code


async def _caller(
    base_url: str,
    key: str,
    user: str,
    window: Window,
    result: LevelResult,
    arrives_after: float,
) -> None:
    await asyncio.sleep(arrives_after)
    async with httpx.AsyncClient(base_url=base_url, limits=ONE_CONNECTION, timeout=60) as client:
        while time.perf_counter() < window.end:
            started = time.perf_counter()
            try:
                failure = str(await provision_pair(client, key, user))
            except httpx.HTTPError as exc:
                failure = type(exc).__name__
            finished = time.perf_counter()
            if not window.holds(finished):
                continue
            if failure == "0":
                result.latencies.append(finished - started)
            else:
                result.errors += 1
                result.unavailable += failure == "503"
                result.failures[failure] += 1


def set_setup_aside() -> None:
    """Keep the collector of the measuring process off everything set-up made (imports,
    migrations, preparation): a full collection of it pauses this loop for 50-100 ms, and
    every call in flight would count that pause as the server's latency."""
    gc.collect()
    gc.freeze()


async def run_level(
    base_url: str, key: str, users: list[str], callers: int, warmup: float, seconds: float
) -> LevelResult:
    """``callers`` concurrent callers, caller i acting for ``users[i % len(users)]``."""
    result = LevelResult(callers, seconds)
    set_setup_aside()
    start = time.perf_counter() + warmup
    window = Window(start, start + seconds)
    await asyncio.gather(
        *(
            _caller(base_url, key, users[index % len(users)], window, result, index * ARRIVAL_GAP)
            for index in range(callers)
        )
    )
    return result
