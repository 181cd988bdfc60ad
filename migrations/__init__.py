"""Alembic migrations, shipped with the package so `tsprov migrate` runs from a wheel."""
