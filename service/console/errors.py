"""The one exception console routes raise to answer with a plain page instead of acting."""

from __future__ import annotations

from typing import Literal

Tone = Literal["ok", "bad", "plain", "ask"]


class ConsolePageError(Exception):
    """Answer a console request with a plain page (status, title, paragraphs)."""

    def __init__(self, status: int, title: str, *paragraphs: str, tone: Tone = "bad") -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.paragraphs = paragraphs
        self.tone = tone
