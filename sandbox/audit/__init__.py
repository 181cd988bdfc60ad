"""The configuration audit log: recording events, the names Tailscale accepts, and queries."""
