"""The login host's HTML: the consent page and the error page, self-contained."""

from html import escape

from fastapi.responses import HTMLResponse

from sandbox.models import User

# Inline styles only: the page must render with no third-party assets and a strict CSP.
_STYLE = """
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f4f5;
color:#18181b;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border:1px solid #e4e4e7;border-radius:12px;padding:2rem;max-width:28rem;
width:100%;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:1.25rem;margin:0 0 1rem}.muted{color:#52525b;font-size:.9rem}
code{background:#f4f4f5;padding:.1rem .3rem;border-radius:4px}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
select{width:100%;padding:.5rem;border:1px solid #d4d4d8;border-radius:6px;font:inherit}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}
button{flex:1;padding:.6rem;border-radius:6px;font:inherit;cursor:pointer;border:1px solid #d4d4d8}
button.approve{background:#18181b;color:#fff;border-color:#18181b}
button.deny{background:#fff;color:#18181b}
"""
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SCOPE_DESCRIPTIONS = {
    "auth_keys:create:once": "create one auth key, good for a single device, on your behalf",
    "auth_keys:create": "create auth keys for devices owned by you, until you revoke access",
}


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def error_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    """Answer with an error page; never a redirect, since the redirect target is not trusted."""
    body = f"<h1>{escape(title)}</h1><p>{escape(message)}</p>"
    return HTMLResponse(_document(title, body), status_code=status, headers=_SECURITY_HEADERS)


def _scope_items(scopes: list[str]) -> str:
    items = "".join(
        f"<li><code>{escape(scope)}</code> — "
        f"{escape(SCOPE_DESCRIPTIONS.get(scope, 'access your tailnet'))}</li>"
        for scope in scopes
    )
    return f"<ul>{items}</ul>"


def consent_page(
    *, app_name: str, tailnet: str, scopes: list[str], users: list[User], hidden: dict[str, str]
) -> HTMLResponse:
    """Answer with the consent page: the app, the scope, who signs in, Approve and Deny."""
    title = f"Authorize {app_name} — Tailscale sandbox"
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in hidden.items()
    )
    options = "".join(
        f'<option value="{escape(user.login_name)}">'
        f"{escape(user.display_name)} ({escape(user.login_name)})</option>"
        for user in users
    )
    body = (
        f"<h1>{escape(app_name)} wants access to your tailnet</h1>"
        f'<p class="muted">Tailnet <strong>{escape(tailnet)}</strong>. '
        f"If you approve, <strong>{escape(app_name)}</strong> may:</p>"
        f"{_scope_items(scopes)}"
        '<form method="post" action="/a/oauth_authorize">'
        f"{fields}"
        '<label for="login">Sign in as</label>'
        f'<select id="login" name="login">{options}</select>'
        '<div class="actions">'
        '<button class="deny" type="submit" name="decision" value="deny">Deny</button>'
        '<button class="approve" type="submit" name="decision" value="approve">Approve</button>'
        "</div></form>"
        '<p class="muted">This is the tsprov Tailscale sandbox; no real tailnet is involved.</p>'
    )
    return HTMLResponse(_document(title, body), headers=_SECURITY_HEADERS)
