"""Who used the machine's CPU during a level: the load generator, each app, the sandbox,
Postgres (all its backends, whoever they serve) and everything else.

The machine is shared, so a figure is only as good as the share of the cores the system
under test got; this is read from /proc, in cores (CPU seconds per wall-clock second).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _process_ticks(pid: int) -> tuple[str, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name_end = stat.rindex(")")
    name = stat[stat.index("(") + 1 : name_end]
    fields = stat[name_end + 2 :].split()
    return name, int(fields[11]) + int(fields[12])  # utime + stime


def _machine_ticks() -> tuple[int, int]:
    """Busy ticks of every core (user, nice, system, irq, softirq) and ticks stolen by the host."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(value) for value in Path("/proc/stat").read_text().split()[1:9]
    )
    return user + nice + system + irq + softirq, steal


@dataclass(frozen=True)
class CpuSnapshot:
    moment: float
    busy: int
    steal: int
    # pid → (group, ticks so far)
    processes: dict[int, tuple[str, int]]


def snapshot(groups: dict[int, str]) -> CpuSnapshot:
    """CPU ticks so far of every process: ``groups`` names pids; postgres and other besides."""
    processes = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        found = _process_ticks(pid)
        if found is not None:
            name, ticks = found
            processes[pid] = (
                groups.get(pid) or ("postgres" if name == "postgres" else "other"),
                ticks,
            )
    busy, steal = _machine_ticks()
    return CpuSnapshot(time.monotonic(), busy, steal, processes)


def cores_used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Cores each group used between the snapshots, the machine's total, and the rest.

    A process that started meanwhile counts from zero; one that ended meanwhile is missed, and
    its share lands in ``unattributed`` with the kernel's own work. ``stolen`` is time the
    host gave this virtual machine's cores to someone else.
    """
    seconds = (after.moment - before.moment) * TICKS
    ticks: Counter[str] = Counter()
    for pid, (group, total) in after.processes.items():
        _, earlier = before.processes.get(pid, (group, 0))
        ticks[group] += max(0, total - earlier)
    used = {group: count / seconds for group, count in ticks.items()}
    used["machine"] = (after.busy - before.busy) / seconds
    used["unattributed"] = max(0.0, used["machine"] - sum(ticks.values()) / seconds)
    used["stolen"] = (after.steal - before.steal) / seconds
    return used


def busiest_shares(before: CpuSnapshot, after: CpuSnapshot, group: str) -> list[float]:
    """How ``group``'s CPU fell to its processes between the snapshots, busiest first: with
    several workers, whether the load was shared or one process did most of it."""
    used = [
        max(0, total - before.processes.get(pid, (name, 0))[1])
        for pid, (name, total) in after.processes.items()
        if name == group
    ]
    whole = sum(used) or 1
    return sorted((ticks / whole for ticks in used if ticks), reverse=True)
