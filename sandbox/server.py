"""Running the sandbox alone: print what a client needs, then serve with uvicorn."""

import uvicorn

from sandbox.app import create_app
from sandbox.settings import SandboxSettings


def describe(settings: SandboxSettings, base_url: str) -> str:
    """Return the start-up banner: URLs, ids, and the credentials that were generated."""
    generated = settings.generated_credentials()

    def shown(name: str) -> str:
        return generated.get(name, "(as configured)")

    lines = [
        f"Tailscale sandbox on {base_url} (login host and API host alike)",
        f"  tailnet:                {settings.tailnet}",
        f"  users (first is admin): {', '.join(settings.users)}",
        f"  grant mode:             {settings.grant_mode}",
        f"  OAuth app client id:    {settings.app_client_id}",
        f"  OAuth app secret:       {shown('app_client_secret')}",
        f"  redirect URIs:          {', '.join(settings.app_redirect_uris)}",
        f"  observer client id:     {settings.observer_client_id}",
        f"  observer secret:        {shown('observer_client_secret')}",
        f"  observer scopes, tags:  {' '.join(settings.observer_scopes)}; "
        f"{' '.join(settings.observer_tags)}",
        f"  admin token:            {shown('admin_token')}",
        f"  control API and docs:   {base_url}/sandbox/  {base_url}/docs",
    ]
    return "\n".join(lines)


def run_sandbox(host: str, port: int, settings: SandboxSettings | None = None) -> None:
    """Serve the sandbox on host:port until interrupted."""
    settings = settings or SandboxSettings()
    shown_host = f"[{host}]" if ":" in host else host
    print(describe(settings, f"http://{shown_host}:{port}"), flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
