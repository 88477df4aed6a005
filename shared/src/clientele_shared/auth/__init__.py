"""Authentication and direction-based access control shared by every Clientele service."""

from .access import (
    ForbiddenDirectionError,
    apply_direction_filter,
    ensure_visible,
    visible_to,
    writable_directions,
)
from .dependencies import (
    CurrentPrincipal,
    ForbiddenError,
    bearer_scheme,
    current_principal,
    get_verifier,
    install_auth,
    require_roles,
)
from .keys import KeyFileError, jwk_thumbprint, load_private_key, load_public_key, public_jwk
from .principal import ALL_ROLES, Principal, PrincipalKind, Role
from .settings import ASYMMETRIC_ALGORITHMS, AuthSettings
from .tokens import (
    AuthenticationError,
    AuthUnavailableError,
    ServiceTokenProvider,
    TokenIssuer,
    TokenVerifier,
    principal_from_claims,
)

__all__ = [
    "ALL_ROLES",
    "ASYMMETRIC_ALGORITHMS",
    "AuthSettings",
    "AuthUnavailableError",
    "AuthenticationError",
    "CurrentPrincipal",
    "ForbiddenDirectionError",
    "ForbiddenError",
    "KeyFileError",
    "Principal",
    "PrincipalKind",
    "Role",
    "ServiceTokenProvider",
    "TokenIssuer",
    "TokenVerifier",
    "apply_direction_filter",
    "bearer_scheme",
    "current_principal",
    "ensure_visible",
    "get_verifier",
    "install_auth",
    "jwk_thumbprint",
    "load_private_key",
    "load_public_key",
    "principal_from_claims",
    "public_jwk",
    "require_roles",
    "visible_to",
    "writable_directions",
]
