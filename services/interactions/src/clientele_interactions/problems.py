"""How the rules' errors and an unavailable attachment storage answer: RFC 9457 problems."""

from __future__ import annotations

from typing import Any

from clientele_shared.http.problems import problem_response
from clientele_shared.storage import StorageUnavailable
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from clientele_interactions.log.rules import CounterpartyBlocked, Rejected, StateConflict


def _location(loc: Any) -> list[str]:
    parts = [str(part) for part in loc]
    return parts if parts and parts[0] in ("body", "query", "path", "header") else ["body", *parts]


def validation_problem(request: Request, errors: list[dict[str, Any]]) -> JSONResponse:
    """A 422 problem of the same shape as FastAPI's validation errors."""
    return problem_response(
        request,
        422,
        "Validation Failed",
        "The request is not valid; nothing was changed.",
        kind="validation-failed",
        errors=[
            {
                "location": _location(error.get("loc", ())),
                "message": str(error.get("msg", "")),
                "type": str(error.get("type", "value_error")),
            }
            for error in errors
        ],
    )


async def _on_rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Rejected)
    return validation_problem(request, exc.errors)


async def _on_state_conflict(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 409, "Conflict", str(exc), kind="conflict")


async def _on_blocked(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CounterpartyBlocked)
    return problem_response(
        request,
        409,
        "Counterparty Blocked",
        str(exc),
        kind="counterparty-blocked",
        organization_id=str(exc.organization_id) if exc.organization_id else None,
        person_ids=[str(p) for p in exc.person_ids],
    )


async def _on_storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        request,
        503,
        "Storage Unavailable",
        f"The attachment storage did not answer; try again. ({exc})",
        kind="storage-unavailable",
        headers={"Retry-After": "5"},
    )


def install_rule_handlers(app: FastAPI) -> None:
    """Rules broken after parsing answer 422 (Rejected) or 409 (StateConflict,
    CounterpartyBlocked); an unavailable attachment storage 503."""
    app.add_exception_handler(Rejected, _on_rejected)
    app.add_exception_handler(StateConflict, _on_state_conflict)
    app.add_exception_handler(CounterpartyBlocked, _on_blocked)
    app.add_exception_handler(StorageUnavailable, _on_storage_unavailable)
