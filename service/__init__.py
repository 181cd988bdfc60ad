"""tsprov: provision Tailscale devices as a named person."""

__version__ = "0.1.0"
