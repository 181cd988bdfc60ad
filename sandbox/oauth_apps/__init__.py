"""The OAuth-app admin API: the registry of apps and the rules Tailscale applies to them."""
