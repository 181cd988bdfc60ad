"""The sandbox application: Tailscale's login host and API v2 on one port, plus `/sandbox/*`."""

from fastapi import FastAPI
from starlette.types import ASGIApp

from sandbox.errors import install_error_handlers
from sandbox.faults import FaultLayer
from sandbox.routes import (
    audit_log,
    authorize,
    control,
    device_attributes,
    devices,
    keys,
    oauth_apps,
    tailnet_settings,
    token,
    users,
)
from sandbox.settings import SandboxSettings
from sandbox.state import SandboxState

DESCRIPTION = """
A faithful in-memory stand-in for Tailscale: `/a/oauth_authorize` (login host) and
`/api/v2/...` (API host) as Tailscale serves them, and a control API under `/sandbox/`
for switches, faults, the request log, the clock, reset, and joining devices.
"""


class SandboxApp(FastAPI):
    """A FastAPI app whose outermost layer injects faults and logs requests."""

    def __init__(self, state: SandboxState) -> None:
        super().__init__(title="tsprov Tailscale sandbox", description=DESCRIPTION)
        self.state.sandbox = state
        self._sandbox_state = state

    def build_middleware_stack(self) -> ASGIApp:
        """Wrap every other layer, so faults see the server's own send and drop connections."""
        return FaultLayer(super().build_middleware_stack(), self._sandbox_state)


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    """Build a sandbox seeded from `settings` (read from the environment when omitted)."""
    state = SandboxState(settings or SandboxSettings())
    app = SandboxApp(state)
    install_error_handlers(app)
    routes = (authorize, token, keys, devices, device_attributes, users, tailnet_settings)
    for module in (*routes, audit_log, oauth_apps, control):
        app.include_router(module.router)
    return app
