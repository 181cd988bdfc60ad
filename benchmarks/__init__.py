"""Benchmarks run against a real Postgres; see README.md."""
