"""The installed package is what the image runs (the Dockerfile's `pip install .`): the
files tsprov reads at run time besides its modules must be inside the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Read at run time from the package: the console's pages and stylesheet, Alembic's template.
RUNTIME_FILES = ("service/console/templates", "service/console/static", "migrations")
RUNTIME_SUFFIXES = (".html", ".css", ".mako")


def _runtime_files() -> set[str]:
    found = set()
    for folder in RUNTIME_FILES:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in RUNTIME_SUFFIXES:
                found.add(path.relative_to(ROOT).as_posix())
    return found


# What a clean clone has not: a build left by an earlier one would hide a missing file.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", ".tsprov", "build", "*.egg-info", "test-artifacts", "__pycache__", ".*_cache"
)


def test_the_wheel_carries_every_template_and_stylesheet(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_IN_A_CLONE)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path)]
    subprocess.run([*build, str(source)], check=True, timeout=300, capture_output=True)
    (wheel,) = tmp_path.glob("tsprov-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())

    wanted = _runtime_files()
    assert any(name.endswith(".html") for name in wanted)
    assert wanted - packed == set()
