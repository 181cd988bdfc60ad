"""Local development tooling: `tsprov dev` and `tsprov sandbox`; never deployed."""
