"""The built-in token issuer, for deployments without an identity provider.

``POST /v1/auth/token`` exchanges an employee's e-mail and password (argon2id hash) for a JWT
signed with ``AUTH_PRIVATE_KEY_FILE``; the other services verify it with the matching public
key or with this service's JWKS (``/.well-known/jwks.json``). Attempts are counted in Redis per
e-mail and client address (``LOGIN_MAX_ATTEMPTS``), and per client address whatever the e-mail
(``LOGIN_CLIENT_MAX_ATTEMPTS``, which stops one password sprayed over many e-mails); past either
within ``LOGIN_WINDOW_SECONDS`` the answer is 429 until the window ends, whether or not the
password is right. Keying the e-mail's count by client means nobody can lock an employee out from
elsewhere. A successful sign-in resets its e-mail's count and gives its attempt back to the client.
"""

from __future__ import annotations

import functools

from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.http.problems import ProblemError
from clientele_shared.http.ratelimit import TooManyRequests, count_in_window
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from redis.exceptions import RedisError

from clientele_directory.employees import service as employees
from clientele_directory.employees.rules import (
    AccessToken,
    Credentials,
    login_client_key,
    login_key,
)
from clientele_directory.settings import DirectorySettings

log = get_logger(__name__)


class InvalidCredentials(ProblemError):
    def __init__(self) -> None:
        super().__init__(
            401,
            "Unauthorized",
            "The e-mail or the password is not right.",
            kind="invalid-credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )


class TooManyAttempts(TooManyRequests):
    def __init__(self, retry_after: int, whose: str) -> None:
        super().__init__(
            retry_after,
            f"Too many sign-in attempts {whose}; wait and try again.",
            kind="too-many-attempts",
        )


class IssuerUnavailable(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(503, "Service Unavailable", detail, kind="issuer-unavailable")


@functools.cache
def _decoy_hash() -> str:
    """A hash to verify against for unknown e-mails, so their answer takes as long."""
    return employees.HASHER.hash("decoy password that matches nothing")


async def _count_attempt(
    runtime: ServiceRuntime, settings: DirectorySettings, email: str, client: str
) -> None:
    window = settings.login_window_seconds
    try:
        mine, my_ttl = await count_in_window(runtime.redis, login_key(email, client), window)
        theirs, their_ttl = await count_in_window(runtime.redis, login_client_key(client), window)
    except RedisError as exc:  # fail closed: without the counter, no guessing
        log.warning("login rate limiter unavailable", error=repr(exc))
        raise IssuerUnavailable("Sign-in is unavailable for a moment; try again.") from None
    if mine > settings.login_max_attempts:
        raise TooManyAttempts(my_ttl, "for this e-mail")
    if theirs > settings.login_client_max_attempts:
        log.warning("sign-in attempts limited for a client", attempts=theirs)
        raise TooManyAttempts(their_ttl, "from this address")


async def _forget_attempt(runtime: ServiceRuntime, email: str, client: str) -> None:
    """A right password: its e-mail's count restarts and the client gets its attempt back."""
    async with runtime.redis.pipeline(transaction=True) as pipe:
        pipe.delete(login_key(email, client))
        pipe.decr(login_client_key(client))
        await pipe.execute()


async def issue_token(
    *, runtime: ServiceRuntime, issuer: TokenIssuer, credentials: Credentials, client: str
) -> AccessToken:
    """A bearer token for the right e-mail and password (401 when wrong, 429 when there were
    too many attempts for this e-mail or from this address)."""
    settings = runtime.settings
    assert isinstance(settings, DirectorySettings)
    await _count_attempt(runtime, settings, credentials.email, client)
    row = await employees.sign_in_record(runtime=runtime, email=credentials.email)
    password = credentials.password.get_secret_value()
    stored = row.password_hash if row is not None else None
    valid = await employees.verify_password(stored or _decoy_hash(), password)
    if row is None or stored is None or not valid or not row.active:
        log.info("sign-in refused", known=row is not None)
        raise InvalidCredentials()
    if employees.HASHER.check_needs_rehash(stored):
        await employees.rehash_password(runtime=runtime, employee_id=row.id, password=password)
    await _forget_attempt(runtime, credentials.email, client)
    token = issuer.mint(
        str(row.id),
        roles=row.roles,
        directions=row.directions,
        name=row.name,
        email=row.email,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    log.info("signed in", employee_id=str(row.id))
    return AccessToken(access_token=token, expires_in=settings.access_token_ttl_seconds)
