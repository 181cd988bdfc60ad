"""The text ``tsprov dev`` prints: commands a newcomer can paste, in order."""

from __future__ import annotations

from sandbox.settings import SandboxSettings
from service.settings import Settings

_PY_FIELD = "python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])'"


def walkthrough(settings: Settings, sandbox: SandboxSettings, key: str, seconds: float) -> str:
    api = settings.public_url
    box = settings.tailscale_api_url
    users = ", ".join(sandbox.users)
    return f"""
tsprov is ready ({seconds:.1f} s).
  service  {api}   (API docs: {api}/docs, metrics: {api}/metrics)
  sandbox  {box}   (the Tailscale stand-in; its users: {users})

A demo caller key was made for this run (scopes provision, read, audit). Paste these lines
into another terminal, in order:

export TSPROV_KEY={key}
export TSPROV={api}

# 1. Ask for a device for the user "alice":
REQ=$(curl -s -X POST "$TSPROV/v1/users/alice/provisioning-requests" \\
  -H "Authorization: Bearer $TSPROV_KEY" -H 'Content-Type: application/json' \\
  -d '{{"hostname": "devbox-1"}}')
echo "$REQ"
REQ_ID=$(echo "$REQ" | {_PY_FIELD} id)

# 2. Open the consent link in a browser, sign in as alice@example.com and Approve:
echo "$REQ" | {_PY_FIELD} consent_url

# 3. Once approved, claim the auth key (exactly once):
CLAIM=$(curl -s -X POST "$TSPROV/v1/provisioning-requests/$REQ_ID/claim" \\
  -H "Authorization: Bearer $TSPROV_KEY")
echo "$CLAIM" | {_PY_FIELD} tailscale_up

# 4. Join, as `tailscale up --auth-key=…` would (the sandbox stands in for a device):
AUTH_KEY=$(echo "$CLAIM" | {_PY_FIELD} auth_key)
curl -s -X POST "{box}/sandbox/join" -H 'Content-Type: application/json' \\
  -d "{{\\"authKey\\": \\"$AUTH_KEY\\", \\"hostname\\": \\"devbox-1\\", \\"os\\": \\"linux\\"}}"

# 5. Watch the request turn "joined", owned by alice:
curl -s "$TSPROV/v1/provisioning-requests/$REQ_ID?wait_seconds=10" \\
  -H "Authorization: Bearer $TSPROV_KEY"

# 6. The audit trail of all of it:
curl -s "$TSPROV/v1/audit?start=2000-01-01T00:00:00Z&end=2100-01-01T00:00:00Z" \\
  -H "Authorization: Bearer $TSPROV_KEY"

Ctrl-C stops everything tsprov dev started.
"""
