"""How a failed command is reported: one line, without SQL parameters, inputs or passwords."""

from __future__ import annotations

import re

import asyncpg
from alembic.util.exc import CommandError as AlembicCommandError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from service.audit.commands import ExpectationError
from service.audit.signing import SigningKeyError
from service.crypto.keyring import DecryptionError, KeyRingError
from service.ops.app_role import AppRoleError
from service.ops.cli.commands import CommandError
from service.ops.devdb import DevDatabaseError

REPORTED = (
    CommandError,
    DevDatabaseError,
    ValidationError,
    SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    KeyRingError,
    DecryptionError,
    SigningKeyError,
    ExpectationError,
    AppRoleError,
    AlembicCommandError,
    OSError,
)
# A URL's user:password@ part, wherever a library quotes the URL it was given.
CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


def describe(exc: BaseException) -> str:
    """A one-line reason for ``exc`` that carries no SQL parameters, input values or passwords."""
    if isinstance(exc, ValidationError):
        reason = _describe_invalid_setting(exc)
    elif isinstance(exc, DBAPIError) and exc.orig is not None:
        # The driver's own message: SQLAlchemy's text appends the statement and parameters.
        reason = f"database error: {exc.orig}"
    elif isinstance(exc, SQLAlchemyError):
        reason = f"database error: {exc.args[0] if exc.args else type(exc).__name__}"
    else:
        reason = str(exc)
    lines = reason.strip().splitlines()
    return CREDENTIALS.sub("***@", lines[0]) if lines else type(exc).__name__


def _describe_invalid_setting(exc: ValidationError) -> str:
    # The input is left out on purpose: the invalid value may be a secret.
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    message = first["msg"].removeprefix("Value error, ")
    name = ".".join(str(part) for part in first["loc"]).upper()
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid setting {name}: {message}{more}" if name else f"{message}{more}"
