"""Sampling a running server with py-spy, and ranking where its samples fall.

py-spy's raw output is one line per distinct stack, ``frame;frame;… count``, each frame
``function (path:line)``, the path relative to its ``sys.path`` entry. Frames are grouped
by module and function, lines apart: self samples count the innermost frame of a stack,
inclusive samples every function on it once. Only the thread holding the GIL is sampled
(``--gil``): that is where the process spends CPU in Python, and idle threads (anyio's
worker threads waiting for work, say) stay out of the ranking. SQLAlchemy's async layer runs
the ORM in greenlets, and py-spy shows a greenlet's stack from its own first frame
(``Session.scalar``, ``Session.flush``, …), cut from the route that awaits it: so the
roots of the stacks are counted too, and the ORM's share is read there, not under the routes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*):\d+\)$")


def py_spy_command() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: `make .venv/.installed` installs the dev tools")
    return found


def start_recording(
    pid: int, seconds: float, output: Path, *, rate: int = 100
) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` and its subprocesses (workers) ``rate`` times a second."""
    command = [py_spy_command(), "record", "--pid", str(pid), "--subprocesses", "--gil",
               "--rate", str(rate),
               "--duration", str(max(1, round(seconds))), "--format", "raw",
               "--output", str(output)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def frame_name(frame: str) -> str:
    """``module:function`` for one py-spy frame."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["path"].removesuffix(".py").removesuffix("/__init__")
    module = path.replace("/", ".").lstrip(".")
    return f"{module}:{match['function']}"


# Frames on nearly every stack of the serving thread: ranking them says nothing.
ENTRY_FRAMES = ("service.cli:", "service.server:", "service.__main__:")


@dataclass(frozen=True)
class Profile:
    samples: int
    self_samples: Counter[str]
    inclusive_samples: Counter[str]
    roots: Counter[str]

    def top_roots(self, count: int) -> list[tuple[str, float]]:
        return [(name, n / self.samples) for name, n in self.roots.most_common(count)]

    def by_package(self) -> list[tuple[str, float]]:
        """Self samples by top-level package: where the CPU goes, library by library."""
        packages: Counter[str] = Counter()
        for name, count in self.self_samples.items():
            packages[name.split(":")[0].split(".")[0]] += count
        return [(name, n / self.samples) for name, n in packages.most_common()]

    def top_self(self, count: int) -> list[tuple[str, float]]:
        return [(name, n / self.samples) for name, n in self.self_samples.most_common(count)]

    def top_inclusive(self, count: int, prefix: str) -> list[tuple[str, float]]:
        ranked = (
            item
            for item in self.inclusive_samples.most_common()
            if item[0].startswith(prefix) and not item[0].startswith(ENTRY_FRAMES)
        )
        return [(name, n / self.samples) for name, n in list(ranked)[:count]]


def read_profile(raw: Path) -> Profile:
    samples = 0
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    roots: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # With --subprocesses the first frame names the process; it is not code.
        frames = [
            frame_name(frame) for frame in stack.split(";") if not frame.startswith("process ")
        ]
        if not frames:
            continue
        samples += count
        self_samples[frames[-1]] += count
        roots[frames[0]] += count
        for name in set(frames):
            inclusive[name] += count
    return Profile(samples, self_samples, inclusive, roots)
