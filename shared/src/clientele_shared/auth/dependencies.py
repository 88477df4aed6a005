"""FastAPI wiring: who is calling (401) and may they perform this write (403).

Reads are never refused with 403: they are filtered by direction (see :mod:`.access`) and a
record the caller may not see answers 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..http.problems import ProblemError, install_problem_handlers
from .principal import WRITER_ROLES, Principal
from .tokens import AuthenticationError, TokenVerifier

VERIFIER_STATE_KEY: Final = "auth_verifier"

bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A Clientele access token: `Authorization: Bearer <jwt>`.",
)
"""Declares the bearer security scheme in OpenAPI; the checks themselves are done below."""


class ForbiddenError(ProblemError):
    """403: the caller is known but may not perform this write."""

    def __init__(self, detail: str = "You are not allowed to perform this action.") -> None:
        super().__init__(403, "Forbidden", detail, kind="forbidden")


def install_auth(app: FastAPI, verifier: TokenVerifier) -> None:
    """Make ``verifier`` available to :func:`current_principal` for every route of ``app``.

    Also installs the problem-details handlers when the app has none yet, so authentication
    failures are answered as ``application/problem+json``.
    """
    setattr(app.state, VERIFIER_STATE_KEY, verifier)
    if ProblemError not in app.exception_handlers:
        install_problem_handlers(app)


def get_verifier(request: Request) -> TokenVerifier:
    """The verifier stored by :func:`install_auth`."""
    verifier = getattr(request.app.state, VERIFIER_STATE_KEY, None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("install_auth(app, verifier) must be called before serving requests")
    return verifier


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Principal:
    """The principal of the ``Authorization: Bearer`` token; 401 problem when absent or invalid.

    The principal is also stored on ``request.state.principal`` (for logging and auditing).
    """
    del credentials  # only declares the scheme in OpenAPI; the header is parsed here
    verifier = get_verifier(request)
    header = request.headers.get("authorization", "").strip()
    if not header:
        raise AuthenticationError("A bearer token is required.", error=None)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError(
            "The Authorization header must be 'Bearer <token>'.", error="invalid_request"
        )
    principal = await verifier.verify(token)
    if principal.confined and not _admits_confined(request):
        raise ForbiddenError("A confined service token does not allow this action.")
    request.state.principal = principal
    return principal


def _admits_confined(request: Request) -> bool:
    """Whether the matched route takes a confined service token (ADR 49): one of its
    dependencies is ``require_roles(..., admit_confined=True)``. Every other route, reads
    included, refuses it, whether or not it checks roles itself."""
    pending = [getattr(request.scope.get("route"), "dependant", None)]
    while pending:
        dependant = pending.pop()
        if dependant is None:
            continue
        if getattr(dependant.call, "admits_confined", False):
            return True
        pending.extend(dependant.dependencies)
    return False


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
"""Route parameter type for the authenticated caller: ``principal: CurrentPrincipal``."""


def require_roles(
    *roles: str, admit_confined: bool = False
) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory for write actions: the caller must hold at least one of ``roles``.

    There is no implicit super-user: list ``Role.ADMIN`` (or ``Role.SERVICE``) explicitly when
    they may perform the action. A confined service token (ADR 49) holds no role and passes
    only where ``admit_confined`` says so (the one action its feature needs), as a member of
    its directions. Use it as ``Depends(require_roles(Role.SALES))`` or in
    ``Annotated[Principal, Depends(require_roles(...))]``; answers a 403 problem otherwise.
    """
    if not roles:
        raise ValueError("require_roles() needs at least one role")
    allowed = frozenset(roles)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.confined:
            if not admit_confined:
                raise ForbiddenError("A confined service token does not allow this action.")
        elif not principal.has_role(*allowed):
            raise ForbiddenError("Your roles do not allow this action.")
        return principal

    dependency.__name__ = f"require_roles_{'_'.join(sorted(allowed))}"
    dependency.__dict__["admits_confined"] = admit_confined  # read by current_principal
    return dependency


Writer = Annotated[Principal, Depends(require_roles(*WRITER_ROLES))]
"""Route parameter type for a write any role that writes business records may make (a security
officer, who only reads, gets a 403); the directions are checked by the service."""
