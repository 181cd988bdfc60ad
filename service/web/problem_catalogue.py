"""The pages a problem's ``type`` points to: what each code means and what to do."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from service.web.errors import BrowserError
from service.web.openapi import page_responses
from service.web.pages import render_sections
from service.web.problem_codes import PROBLEMS

router = APIRouter(tags=["operations"])


@router.get(
    "/problems/{code}",
    summary="What a problem code means and what to do about it",
    response_class=HTMLResponse,
    responses=page_responses({200: "The code's page", 404: "No such code"}),
)
async def problem_page(
    code: Annotated[str, Path(description="A problem's `code`", examples=["validation_failed"])],
) -> HTMLResponse:
    """The page every problem+json answer's `type` names; plain HTML, no scripts."""
    kind = PROBLEMS.get(code)
    if kind is None:
        raise BrowserError(404, "Unknown problem code", "tsprov never answers with this code.")
    return render_sections(
        200,
        f"{kind.title} ({kind.code})",
        {
            "HTTP status": str(kind.status),
            "What it means": kind.meaning,
            "What to do": kind.what_to_do,
        },
    )
