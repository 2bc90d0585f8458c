"""OpenAI-style error objects for every failure the gateway answers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from demigod.protocol import ErrorBody, ErrorResponse

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error answered to the client as `{"error": {...}}` with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorResponse(
            error=ErrorBody(message=message, type=type, param=param, code=code)
        )
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body.model_dump(), status_code=self.status, headers=self.headers)


def field_path(location: tuple[int | str, ...]) -> str:
    """('body', 'messages', 0, 'role') -> 'messages[0].role'."""
    path = ""
    for part in location[1:] if location and location[0] == "body" else location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validation_error(exc: RequestValidationError) -> APIError:
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return APIError(
            400, f"request body is not valid JSON: {first.get('msg')}", code="invalid_json"
        )
    param = field_path(tuple(first.get("loc", ())))
    message = first.get("msg", "invalid value")
    if first.get("type") == "extra_forbidden":  # not declared by the request model
        message = "this field is not supported (README: API fields honoured or refused)"
    if param:
        message = f"{param}: {message}"
    return APIError(400, message, param=param or None, code="invalid_value")


def install_error_handlers(app: FastAPI, on_error: Callable[[Request, int], None]) -> None:
    """Answer every failure as an OpenAI error object; `on_error` sees each 4xx/5xx."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        on_error(request, exc.status)
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        on_error(request, 400)
        return validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return APIError(exc.status_code, str(exc.detail), type=kind).response()

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        on_error(request, 500)
        log.exception("internal error on %s %s", request.method, request.url.path)
        return APIError(500, "internal error; see the server log", type="server_error").response()
