"""The sandbox's HTTP routes, one module per Tailscale surface plus the control API."""
