"""/console's routes in one router, and the display filters its templates use."""

from __future__ import annotations

from fastapi import APIRouter

from service.console.operators import actions, pages
from service.console.operators.display import add_filters
from service.console.pages import templates

add_filters(templates.env)
router = APIRouter()
router.include_router(pages.router)
router.include_router(actions.router)
