"""Bearer tokens: verification (JWKS or PEM public key), issuing, service-to-service tokens.

Signatures are checked by PyJWT; only the asymmetric algorithms configured in
:class:`AuthSettings` are accepted, so ``alg: none`` and HMAC algorithm-confusion tokens are
refused before any key is touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import InvalidIssuedAtError, InvalidJTIError, InvalidSubjectError

from ..http.problems import ProblemError
from .keys import (
    PrivateKey,
    PublicKey,
    compatible_algorithms,
    default_algorithm,
    jwk_thumbprint,
    key_algorithms,
    load_private_key,
    load_public_key,
    public_jwk,
)
from .principal import Principal, PrincipalKind, Role
from .settings import AuthSettings

MAX_TOKEN_LENGTH: Final = 16_384
"""Longer bearer tokens are refused without being parsed."""

REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "sub")
NUMERIC_DATE_CLAIMS: Final = ("exp", "iat", "nbf")
"""RFC 7519 NumericDate claims: JSON numbers only (PyJWT would take the string "1700000000")."""

REMEMBERED_TOKENS: Final = 4096
"""Verified tokens a verifier remembers (by SHA-256 digest, least recently used forgotten first):
a client sends the same token with every request, and parsing and checking its signature again
took a tenth of a GET's CPU."""

REMEMBERED_SECONDS: Final = 60
"""A token is verified again at least this often (and after it expires), so a key dropped from
the JWKS stops being accepted at most this long after the verifier's key set is refreshed."""
"""Claims every accepted token must carry (``nbf`` is checked whenever present)."""

_EXPIRED = "The token has expired."
_NOT_YET_VALID = "The token is not valid yet."
_WRONG_AUDIENCE = "The token is not intended for this audience."
_WRONG_ISSUER = "The token was not issued by a trusted issuer."
_BAD_SIGNATURE = "The token signature is invalid."
_BAD_ALGORITHM = "The token is signed with an algorithm that is not accepted."
_UNKNOWN_KEY = "The token is signed with an unknown key."
_NO_KID = "The token header does not name its signing key (kid)."
_MALFORMED = "The token is malformed."
_MALFORMED_CLAIMS = "The token claims are malformed."
_TOO_LONG = "The token is too long."
_INVALID = "The token is invalid."


class AuthenticationError(ProblemError):
    """401: the request carries no usable credentials.

    ``error`` is the RFC 6750 error code put in the ``WWW-Authenticate`` challenge; ``None``
    (no credentials at all) gives a bare ``Bearer`` challenge, as RFC 6750 §3.1 asks.
    """

    def __init__(self, detail: str = _INVALID, *, error: str | None = "invalid_token") -> None:
        challenge = "Bearer" if error is None else f'Bearer error="{error}"'
        super().__init__(
            401,
            "Unauthorized",
            detail,
            kind="unauthorized",
            headers={"WWW-Authenticate": challenge},
        )
        self.error = error


class AuthUnavailableError(ProblemError):
    """503: the identity provider's signing keys could not be fetched (not the caller's fault)."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "Authentication Unavailable",
            "The token signing keys could not be fetched; try again later.",
            kind="auth-unavailable",
            headers={"Retry-After": "5"},
        )


def _string_list(claims: Mapping[str, Any], name: str) -> frozenset[str]:
    value = claims.get(name)
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise AuthenticationError(_MALFORMED_CLAIMS)
    return frozenset(value)


def _optional_string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Map verified JWT claims to a :class:`Principal`.

    ``sub`` → subject, ``roles``/``directions`` (lists of strings), ``svc`` → service name (its
    presence makes the principal a service, which also gets the ``service`` role unless the
    token is ``confined``: then it holds no role at all), ``name``, ``email``. Raises
    :class:`AuthenticationError` when an authorization claim is malformed.
    """
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise AuthenticationError(_MALFORMED_CLAIMS)
    for name in NUMERIC_DATE_CLAIMS:
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise AuthenticationError(_MALFORMED_CLAIMS)
    roles = _string_list(claims, "roles")
    directions = _string_list(claims, "directions")
    service = claims.get("svc")
    if service is None and "directions" not in claims:
        # Absent is not "none": an identity provider that forgot the mapper must not produce
        # users who silently see nothing (or, with a lenient reader, everything).
        raise AuthenticationError("The token lacks the required 'directions' claim.")
    kind: PrincipalKind = "user"
    confined = claims.get("confined", False)
    if not isinstance(confined, bool) or (confined and (service is None or not directions)):
        raise AuthenticationError(_MALFORMED_CLAIMS)
    if service is not None:
        if not isinstance(service, str) or not service:
            raise AuthenticationError(_MALFORMED_CLAIMS)
        kind = "service"
        # A confined token holds no role (its role claims are ignored): it passes only the
        # endpoints that admit confined services by name (``require_roles(admit_confined=...)``).
        roles = frozenset() if confined else roles | {Role.SERVICE}
    return Principal(
        subject=subject,
        kind=kind,
        roles=roles,
        directions=directions,
        confined=confined,
        service=service,
        name=_optional_string(claims, "name"),
        email=_optional_string(claims, "email"),
    )


def _refusal(exc: Exception) -> AuthenticationError:
    """A client-safe 401 for a PyJWT failure (PyJWT's own messages are never echoed)."""
    detail = _INVALID
    if isinstance(exc, jwt.ExpiredSignatureError):
        detail = _EXPIRED
    elif isinstance(exc, jwt.ImmatureSignatureError):
        detail = _NOT_YET_VALID
    elif isinstance(exc, jwt.InvalidAudienceError):
        detail = _WRONG_AUDIENCE
    elif isinstance(exc, jwt.InvalidIssuerError):
        detail = _WRONG_ISSUER
    elif isinstance(exc, jwt.MissingRequiredClaimError):
        detail = f"The token lacks the required '{exc.claim}' claim."
    elif isinstance(exc, jwt.InvalidAlgorithmError):
        detail = _BAD_ALGORITHM
    elif isinstance(exc, jwt.InvalidSignatureError | jwt.InvalidKeyError):
        detail = _BAD_SIGNATURE
    elif isinstance(exc, InvalidSubjectError | InvalidIssuedAtError | InvalidJTIError):
        detail = _MALFORMED_CLAIMS
    elif isinstance(exc, jwt.DecodeError | TypeError | ValueError):
        detail = _MALFORMED
    return AuthenticationError(detail)


class TokenVerifier:
    """Verifies bearer tokens and turns them into principals.

    Keys come from ``settings.jwks_url`` (fetched with :class:`jwt.PyJWKClient`, the key set is
    cached for ``jwks_cache_seconds``; the token's ``kid`` picks the key) or, without a JWKS
    URL, from the PEM ``settings.public_key_file``.
    """

    def __init__(self, settings: AuthSettings, *, jwks_client: PyJWKClient | None = None) -> None:
        self.settings = settings
        self._algorithms: tuple[str, ...] = tuple(settings.algorithms)
        self._jwks: PyJWKClient | None = None
        self._public_key: PublicKey | None = None
        self._key_algorithms: list[str] = []
        self._remembered: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self._remembered_lock = threading.Lock()
        if settings.jwks_url:
            # Only the key *set* is cached (with a lifespan), not individual keys: a key removed
            # from the JWKS stops being accepted once the cached set expires.
            self._jwks = jwks_client or PyJWKClient(
                settings.jwks_url,
                cache_jwk_set=True,
                lifespan=settings.jwks_cache_seconds,
                timeout=settings.jwks_timeout_seconds,
            )
        elif settings.public_key_file is not None:
            self._public_key = load_public_key(settings.public_key_file)
            self._key_algorithms = compatible_algorithms(self._public_key, self._algorithms)
            if not self._key_algorithms:
                raise ValueError(
                    f"the public key in {settings.public_key_file} matches none of the "
                    f"configured algorithms {list(self._algorithms)}"
                )
        else:
            raise ValueError("AuthSettings needs jwks_url or public_key_file to verify tokens")

    @classmethod
    def from_settings(cls, settings: AuthSettings | None = None) -> TokenVerifier:
        """A verifier configured from ``settings`` (default: the ``AUTH_*`` environment)."""
        return cls(settings or AuthSettings())

    @property
    def uses_jwks(self) -> bool:
        return self._jwks is not None

    async def verify(self, token: str) -> Principal:
        """Verify ``token`` and return its principal; raises :class:`AuthenticationError`.

        A token verified in the last REMEMBERED_SECONDS and not expired since is not checked
        again. A JWKS fetch (blocking I/O) runs in a worker thread; cached keys are used inline.
        """
        digest = self._digest(token)
        principal = self._recall(digest)
        if principal is not None:
            return principal
        header = self._checked_header(token)
        if self._jwks is None:
            return self._remember(
                digest, *self._decode(token, self._file_key(), self._key_algorithms)
            )
        kid = self._kid(header)
        key = self._cached_jwk(kid)
        if key is None:
            key = await asyncio.to_thread(self._fetch_jwk, kid)
        return self._remember(digest, *self._decode(token, key, self._algorithms))

    def verify_sync(self, token: str) -> Principal:
        """Blocking variant of :meth:`verify` (may fetch the JWKS on the calling thread)."""
        digest = self._digest(token)
        principal = self._recall(digest)
        if principal is not None:
            return principal
        header = self._checked_header(token)
        if self._jwks is None:
            return self._remember(
                digest, *self._decode(token, self._file_key(), self._key_algorithms)
            )
        kid = self._kid(header)
        key = self._cached_jwk(kid)
        if key is None:
            key = self._fetch_jwk(kid)
        return self._remember(digest, *self._decode(token, key, self._algorithms))

    @staticmethod
    def _digest(token: str) -> bytes:
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationError(_TOO_LONG)
        return hashlib.sha256(token.encode()).digest()

    def _recall(self, digest: bytes) -> Principal | None:
        """The principal of a token verified before, while that verification holds."""
        with self._remembered_lock:
            found = self._remembered.get(digest)
            if found is None:
                return None
            principal, until = found
            if time.time() >= until:
                del self._remembered[digest]
                return None
            self._remembered.move_to_end(digest)
            return principal

    def _remember(self, digest: bytes, principal: Principal, expires: float) -> Principal:
        """Keep a verified token until it expires (with the leeway) or REMEMBERED_SECONDS."""
        until = min(expires + self.settings.leeway_seconds, time.time() + REMEMBERED_SECONDS)
        with self._remembered_lock:
            self._remembered[digest] = (principal, until)
            self._remembered.move_to_end(digest)
            while len(self._remembered) > REMEMBERED_TOKENS:
                self._remembered.popitem(last=False)
        return principal

    def _file_key(self) -> PublicKey:
        assert self._public_key is not None
        return self._public_key

    def _checked_header(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, TypeError, ValueError):
            raise AuthenticationError(_MALFORMED) from None
        if header.get("alg") not in self._algorithms:
            raise AuthenticationError(_BAD_ALGORITHM)
        return header

    @staticmethod
    def _kid(header: Mapping[str, Any]) -> str:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError(_NO_KID)
        return kid

    def _cached_jwk(self, kid: str) -> PyJWK | None:
        """The key from the still-fresh cached key set, without any I/O."""
        assert self._jwks is not None
        cache = self._jwks.jwk_set_cache
        jwk_set = cache.get() if cache is not None else None
        if jwk_set is None:
            return None
        for key in jwk_set.keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key
        return None

    def _fetch_jwk(self, kid: str) -> PyJWK:
        """Blocking: the key for ``kid``, fetching the key set when needed."""
        assert self._jwks is not None
        try:
            return self._jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            raise AuthUnavailableError() from None
        except jwt.PyJWKClientError:
            # No key in the (refreshed) set has this kid.
            raise AuthenticationError(_UNKNOWN_KEY) from None
        except jwt.PyJWTError:
            # The endpoint answered something that is not a usable key set.
            raise AuthUnavailableError() from None

    def _decode(
        self, token: str, key: PublicKey | PyJWK, algorithms: Iterable[str]
    ) -> tuple[Principal, float]:
        """The token's principal and expiry (seconds since the epoch)."""
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(algorithms),
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except (jwt.PyJWTError, TypeError, ValueError) as exc:
            raise _refusal(exc) from None
        expires = float(claims["exp"])
        principal = principal_from_claims(claims).model_copy(update={"expires_at": expires})
        return principal, expires


class TokenIssuer:
    """Signs Clientele tokens with a private key (dev CLI and service-to-service calls).

    The header carries ``kid`` = RFC 7638 thumbprint of the public key, so verifiers using a JWKS
    built from the same key (:meth:`jwks`) find it.
    """

    def __init__(
        self,
        private_key: PrivateKey,
        *,
        issuer: str = "clientele",
        audience: str = "clientele",
        algorithm: str | None = None,
    ) -> None:
        chosen = algorithm or default_algorithm(private_key)
        if chosen not in key_algorithms(private_key):
            raise ValueError(f"algorithm {chosen} cannot be used with this key")
        self._private_key = private_key
        self.algorithm = chosen
        self.issuer = issuer
        self.audience = audience
        self.kid = jwk_thumbprint(private_key)

    @classmethod
    def from_file(
        cls,
        path: Path | str,
        *,
        issuer: str = "clientele",
        audience: str = "clientele",
        algorithm: str | None = None,
    ) -> TokenIssuer:
        """An issuer signing with the PEM private key at ``path``."""
        return cls(
            load_private_key(Path(path)), issuer=issuer, audience=audience, algorithm=algorithm
        )

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> TokenIssuer:
        """An issuer for ``settings.private_key_file``, ``issuer`` and ``audience``."""
        if settings.private_key_file is None:
            raise ValueError("AUTH_PRIVATE_KEY_FILE is needed to mint tokens")
        return cls.from_file(
            settings.private_key_file, issuer=settings.issuer, audience=settings.audience
        )

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (with ``kid``, ``use`` and ``alg``) verifiers need."""
        return public_jwk(self._private_key, algorithm=self.algorithm)

    def jwks(self) -> dict[str, Any]:
        """A JWK Set publishing :meth:`public_jwk`."""
        return {"keys": [self.public_jwk()]}

    def mint(
        self,
        subject: str,
        *,
        roles: Iterable[str] = (),
        directions: Iterable[str] = (),
        service: str | None = None,
        name: str | None = None,
        email: str | None = None,
        ttl_seconds: int = 300,
        audience: str | None = None,
        now: float | None = None,
        confined: bool = False,
    ) -> str:
        """A signed token for ``subject`` valid ``ttl_seconds`` from ``now`` (default: now);
        ``confined``: a service's token for ``directions`` only."""
        if not subject:
            raise ValueError("subject must not be empty")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        issued_at = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience or self.audience,
            "sub": subject,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl_seconds,
            "jti": uuid.uuid4().hex,
            "roles": sorted(set(roles)),
            "directions": sorted(set(directions)),
        }
        if service is not None:
            claims["svc"] = service
        if confined:
            if service is None or not claims["directions"]:
                raise ValueError("a confined token is a service's, for some directions")
            claims["confined"] = True
        if name is not None:
            claims["name"] = name
        if email is not None:
            claims["email"] = email
        return jwt.encode(
            claims,
            self._private_key,
            algorithm=self.algorithm,
            headers={"kid": self.kid, "typ": "JWT"},
        )


class ServiceTokenProvider:
    """Service-to-service bearer tokens, minted once and reused until 30 s before expiry."""

    def __init__(
        self,
        service_name: str,
        issuer: TokenIssuer,
        *,
        ttl_seconds: int = 300,
        refresh_margin_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not service_name:
            raise ValueError("service_name must not be empty")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self.service_name = service_name
        self._issuer = issuer
        self._ttl = ttl_seconds
        # Never let the margin eat the whole lifetime, or every call would mint a token.
        self._margin = min(refresh_margin_seconds, ttl_seconds / 2)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    @classmethod
    def from_settings(cls, service_name: str, settings: AuthSettings) -> ServiceTokenProvider:
        """A provider signing with ``settings.private_key_file``."""
        return cls(
            service_name,
            TokenIssuer.from_settings(settings),
            ttl_seconds=settings.service_token_ttl_seconds,
        )

    @property
    def subject(self) -> str:
        return f"service:{self.service_name}"

    def token(self) -> str:
        """The current token, minting a new one when it expires within the margin."""
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires_at - self._margin:
                issued_at = int(now)
                self._token = self._issuer.mint(
                    self.subject,
                    roles=[Role.SERVICE],
                    service=self.service_name,
                    ttl_seconds=self._ttl,
                    now=issued_at,
                )
                self._expires_at = issued_at + self._ttl
            return self._token

    def authorization_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for an outgoing request."""
        return {"Authorization": f"Bearer {self.token()}"}

    def confined_header(self, directions: Iterable[str]) -> dict[str, str]:
        """A bearer header for a call on behalf of records of ``directions`` only: the callee
        treats us as a member of those directions (reads and writes nowhere else) holding no
        role, so only endpoints admitting confined services take it. Minted per call
        (short-lived, never cached across direction sets)."""
        token = self._issuer.mint(
            self.subject,
            directions=directions,
            service=self.service_name,
            ttl_seconds=min(self._ttl, 60),
            confined=True,
        )
        return {"Authorization": f"Bearer {token}"}
