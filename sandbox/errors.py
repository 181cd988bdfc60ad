"""Error types and their wire shapes: `{"message"}` for the API, RFC 6749 JSON for OAuth."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Tailscale's words (observed) when a caller may not do what it asked.
NOT_PERMITTED = "calling actor does not have enough permissions to perform this function"


class ApiError(Exception):
    """An API v2 (or control API) failure answered as `{"message": …}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OAuthError(Exception):
    """A token endpoint failure answered per RFC 6749 §5.2."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    @property
    def status(self) -> int:
        """401 for client authentication failures, 400 for everything else."""
        return 401 if self.error == "invalid_client" else 400


def message_response(status: int, message: str) -> JSONResponse:
    """Answer with Tailscale's error body."""
    return JSONResponse({"message": message}, status_code=status)


def _describe_validation_error(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid value"))
    return f"{location}: {message}" if location else message


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):
        raise exc
    return message_response(exc.status, exc.message)


# Tailscale's own shape for token-endpoint refusals (seen with client credentials): 401 for
# bad client credentials, 403 for a refused grant or scope, 400 for a malformed request.
_MESSAGE_STATUS = {"invalid_request": 400, "unsupported_grant_type": 400, "invalid_client": 401}


def oauth_error_response(exc: OAuthError, shape: str) -> JSONResponse:
    """Answer a token-endpoint refusal as RFC 6749 (`rfc6749`) or as `{"message"}`."""
    headers = dict(NO_STORE)
    if shape == "message":
        status = _MESSAGE_STATUS.get(exc.error, 403)
        message = "API token invalid" if exc.error == "invalid_client" else exc.description
        return JSONResponse({"message": message}, status_code=status, headers=headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="tailscale"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _oauth_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, OAuthError):
        raise exc
    return oauth_error_response(exc, "rfc6749")


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    errors = exc.errors()
    message = _describe_validation_error(errors[0]) if errors else "invalid request"
    return message_response(400, message)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    return JSONResponse(
        {"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure the app answers use the sandbox's error shapes."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(OAuthError, _oauth_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
