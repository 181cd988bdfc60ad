"""``tsprov doctor``: check a deployment against everything it depends on."""
