"""Revision scripts; Alembic loads them by path, so their names need not be identifiers."""
