"""An in-memory stand-in for Tailscale's login host and API v2, with a switch for every unknown."""
