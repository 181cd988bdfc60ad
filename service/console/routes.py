"""Wiring the console into the app: identity middleware, its error page, assets, /me."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from service.console import me
from service.console.errors import ConsolePageError
from service.console.identity import TrustedIdentity
from service.console.operators.routes import router as operators_router
from service.console.pages import PACKAGE, on_console_page_error
from service.settings import Settings

router = APIRouter(tags=["pages for tailnet users (browser)"])
ASSETS = "/console-assets"
# The package's own files, read once: a fixed list, so no path from a URL reaches the disk.
_STYLESHEET = (PACKAGE / "static" / "console.css").read_bytes()


@router.get(f"{ASSETS}/console.css", include_in_schema=False)
async def stylesheet() -> Response:
    # Cacheable, unlike the pages: it holds nothing about anyone.
    return Response(
        _STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def install_console(app: FastAPI, settings: Settings) -> None:
    """Trust Serve's headers as the settings say, answer ConsolePageError with a page, and
    serve the console's routes."""
    app.add_middleware(TrustedIdentity, settings=settings)
    app.add_exception_handler(ConsolePageError, on_console_page_error)
    app.include_router(router)
    app.include_router(operators_router)
    app.include_router(me.router)
