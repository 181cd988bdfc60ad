"""How list commands print: a table with a header for people, or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, under an upper-case header."""
    cells = [[header.upper() for header in headers], *[list(row) for row in rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def render_json(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """One object per row, keyed by the headers."""
    return json.dumps([dict(zip(headers, row, strict=True)) for row in rows], indent=2)
