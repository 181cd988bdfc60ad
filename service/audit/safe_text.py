"""Text from outside (paths, user ids, upstream names) made safe to store and export.

Control characters, the bidi embedding, override and isolate marks, zero-width and other
format characters, and the line and paragraph separators can split a log line, reorder what
an operator reads, or hide text. They are kept as a visible backslash-u escape instead, so the trail
still shows that something odd was sent, and what.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# json.dumps escapes C0 controls itself; what it leaves raw is all outside ASCII, or DEL.
_NOT_PLAIN_ASCII = re.compile(r"[^\x00-\x7e]")


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in _INVISIBLE_CATEGORIES


def _visible_escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def escape_invisible(text: str) -> str:
    """``text`` with every invisible or line-breaking character written as a backslash-u escape."""
    if text.isprintable():  # the common case: nothing to do, and no per-character loop
        return text
    return "".join(_visible_escape(char) if _invisible(char) else char for char in text)


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    if not _invisible(char):
        return char
    # JSON spells a character beyond the BMP as its UTF-16 surrogate pair.
    units = char.encode("utf-16-be")
    return "".join(f"\\u{int.from_bytes(units[i : i + 2]):04x}" for i in range(0, len(units), 2))


def escape_invisible_json(encoded: str) -> str:
    """JSON text with those characters, left raw by ``ensure_ascii=False``, as JSON escapes."""
    return _NOT_PLAIN_ASCII.sub(_json_escape, encoded)
