"""What every interactions endpoint shares: dependencies, preconditions, rule errors."""

from __future__ import annotations

from typing import Annotated, Any

from clientele_shared.auth.dependencies import require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.problems import problem_response
from clientele_shared.runtime import ServiceRuntime, runtime_of
from clientele_shared.storage import StorageUnavailable
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from clientele_interactions.clock import Clock
from clientele_interactions.log.rules import CounterpartyBlocked, Rejected, StateConflict
from clientele_interactions.settings import InteractionsSettings

Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


def clock_of(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def settings_of(request: Request) -> InteractionsSettings:
    settings = request.app.state.runtime.settings
    assert isinstance(settings, InteractionsSettings)
    return settings


ClockDep = Annotated[Clock, Depends(clock_of)]
Settings = Annotated[InteractionsSettings, Depends(settings_of)]

Writer = Annotated[
    Principal,
    Depends(require_roles(Role.ADMIN, Role.HEAD_OF_SALES, Role.SALES, Role.MARKETER, Role.SERVICE)),
]
"""Who may write to the contact log (a security officer reads only)."""
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Manager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.HEAD_OF_SALES, Role.SERVICE))]


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
