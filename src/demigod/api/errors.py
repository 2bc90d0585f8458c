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


Location = tuple[int | str, ...]


def field_path(location: Location) -> str:
    """('body', 'messages', 0, 'role') -> 'messages[0].role'."""
    path = ""
    for part in location[1:] if location and location[0] == "body" else location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


_ABSENT = object()


def _child(body: object, key: int | str) -> object:
    if isinstance(key, int) and isinstance(body, list) and 0 <= key < len(body):
        return body[key]
    if isinstance(key, str) and isinstance(body, dict) and key in body:
        return body[key]
    return _ABSENT


def _follow(location: Location, body: object, last_given: bool) -> Location | None:
    """The elements of `location` that are keys or indexes along `body`, the others
    skipped; None when its last element is given yet not found."""
    if not location:
        return ()
    head, rest = location[0], location[1:]
    child = _child(body, head)
    if not rest:
        return (head,) if child is not _ABSENT or not last_given else None
    if child is not _ABSENT and (tail := _follow(rest, child, last_given)) is not None:
        return (head, *tail)
    return _follow(rest, body, last_given)  # `head` is a union member or a tag: skipped


def input_location(location: Location, body: object, *, last_given: bool) -> Location:
    """`location` (pydantic's, within the body) as a path through the request `body`:
    pydantic also names union members and discriminator tags (`'list[...]'`,
    `'NamedToolChoice'`, `'text'`), which are not keys of the JSON; they are dropped. A
    tag that is also a key (`"type": "text"` beside `"text"`) is told apart by following
    the body to the end. `last_given`: the last element is in the body (not for a missing
    field)."""
    found = _follow(location, body, last_given)
    if found is None:  # the error is about a union member as a whole: its parent's path
        found = _follow(location[:-1], body, last_given=True) or ()
    return found


def validation_error(exc: RequestValidationError) -> APIError:
    """The 400 for the request's most specific validation error: the one whose location
    reaches deepest into the body (a union's matching member, not its mismatches),
    naming the field by its path in the body."""
    errors = exc.errors()
    first = errors[0]
    if first.get("type") == "json_invalid":
        return APIError(
            400, f"request body is not valid JSON: {first.get('msg')}", code="invalid_json"
        )
    body = exc.body
    located: list[tuple[Location, dict[str, object]]] = []
    for error in errors:
        location: Location = tuple(error.get("loc", ()))
        if location and location[0] == "body" and isinstance(body, dict):
            given = error.get("type") != "missing"
            location = input_location(location[1:], body, last_given=given)
        located.append((location, error))
    location, error = max(located, key=lambda found: len(found[0]))  # first of the deepest
    kind = error.get("type")
    message = str(error.get("msg", "invalid value"))
    if kind == "extra_forbidden":  # not declared by the request model
        message = "this field is not supported (README: API fields honoured or refused)"
    elif kind == "none_required":
        message = "only null is accepted: this field is not supported"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        context = error.get("ctx")
        if isinstance(context, dict):
            location = (*location, str(context.get("discriminator", "type")).strip("'"))
            if kind == "union_tag_invalid":
                message = (
                    f"{context.get('tag')!r} is not supported here; "
                    f"expected {context.get('expected_tags')}"
                )
    param = field_path(location)
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
