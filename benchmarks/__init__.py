"""Benchmarks of tsprov against a real Postgres; run each as ``python -m benchmarks.NAME``."""
