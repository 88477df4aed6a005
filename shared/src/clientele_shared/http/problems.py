"""RFC 9457 problem details: one error shape for every service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clientele_shared.failures import is_unavailable
from clientele_shared.observability import correlation_id_var, get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://clientele.dev/problems/"
RETRY_AFTER_SECONDS = 5
"""What a 503 asks a client to wait: about one database restart or failover."""
log = get_logger(__name__)


class ProblemError(Exception):
    """An error that is answered as a problem details document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.headers = headers or {}
        self.extensions = extensions


class NotFound(ProblemError):
    """The resource does not exist or the caller may not see it (never 403 for reads)."""

    def __init__(self, detail: str = "The resource does not exist.") -> None:
        super().__init__(404, "Not Found", detail, kind="not-found")


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Build the JSON response for one problem."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (kind or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        exc.status,
        exc.title,
        exc.detail,
        kind=exc.kind,
        headers=exc.headers,
        **exc.extensions,
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not Found", 405: "Method Not Allowed", 401: "Unauthorized"}.get(
        exc.status_code, "HTTP Error"
    )
    return problem_response(
        request,
        exc.status_code,
        title,
        str(exc.detail) if exc.detail else None,
        headers=dict(exc.headers or {}),
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "location": [str(part) for part in err.get("loc", ())],
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    return problem_response(
        request,
        422,
        "Validation Failed",
        "The request is not valid; nothing was changed.",
        kind="validation-failed",
        errors=errors,
    )


def unhandled_problem(request: Request, exc: Exception) -> JSONResponse:
    """The answer to an error nothing else handled: 503 with Retry-After when a dependency
    (the database) is unavailable, else 500; both carry the correlation id and are logged."""
    correlation: dict[str, Any] = {}
    if cid := correlation_id_var.get():
        correlation["correlation_id"] = cid
    if is_unavailable(exc):
        log.warning("dependency unavailable", path=request.url.path, error=repr(exc))
        return problem_response(
            request,
            503,
            "Service Unavailable",
            "A dependency of the service is unavailable for the moment; retry later.",
            kind="service-unavailable",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            **correlation,
        )
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return problem_response(
        request,
        500,
        "Internal Server Error",
        "An unexpected error occurred; quote the correlation id when reporting it.",
        kind="internal-server-error",
        **correlation,
    )


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    return unhandled_problem(request, exc)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of the app as application/problem+json.

    Errors no handler knows are answered by `unhandled_problem`: inside the correlation
    middleware when it is installed (with the request's correlation id), else by Starlette's
    outermost error middleware.
    """
    app.add_exception_handler(Exception, _on_unhandled)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)


class Conflict(ProblemError):
    """409: the request contradicts the record's current state (``kind`` names which rule)."""

    def __init__(self, detail: str, *, kind: str = "conflict", **extensions: Any) -> None:
        super().__init__(409, "Conflict", detail, kind=kind, **extensions)


def invalid(errors: Sequence[dict[str, Any]], location: str = "body") -> RequestValidationError:
    """A 422 validation problem (FastAPI's shape) for errors a service finds after parsing."""
    return RequestValidationError(
        [{**error, "loc": (location, *error.get("loc", ()))} for error in errors]
    )


def invalid_field(
    field: str, message: str, kind: str = "value_error", *, location: str = "body"
) -> RequestValidationError:
    """A 422 validation problem naming one field."""
    return invalid([{"loc": tuple(field.split(".")), "msg": message, "type": kind}], location)


PROBLEM_STATUSES = {
    400: "Bad request (malformed body or header)",
    401: "No valid token",
    403: "Not allowed for the caller's role or directions",
    404: "Not found, or not visible to the caller",
    405: "Method not allowed",
    409: "Conflicts with the record's current state",
    412: "The If-Match version is not the current one",
    413: "Body too large",
    415: "Media type not accepted",
    422: "Validation failed; nothing was changed",
    428: "If-Match is required",
    429: "Too many requests",
    503: "A dependency is unavailable; retry later",
}
"""What any operation may answer as problem+json, declared once for every operation."""

_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; extensions (errors, ...) may follow.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "correlation_id": {"type": "string"},
    },
    "additionalProperties": True,
}
_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def document_problems(app: FastAPI) -> None:
    """Declare the problem+json answers of `PROBLEM_STATUSES` on every operation of the app's
    OpenAPI document (FastAPI's own 422 shape is replaced: the handlers never answer it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = _PROBLEM_SCHEMA
        content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path_item in schema.get("paths", {}).values():
            for method, operation in path_item.items():
                if method not in _HTTP_METHODS:
                    continue
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status, description in PROBLEM_STATUSES.items():
                    declared = responses.setdefault(str(status), {"description": description})
                    declared.setdefault("content", {}).update(content)
        for unused in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
