"""What failed: a dependency that is unavailable for a while, or the work itself.

One classification for every caller: a consumer waits out an unavailable database and has the
event redelivered (never dead-lettered); an HTTP request answers 503 with Retry-After. Anything
else (a bad bound value, a broken constraint, a bug) is the work's own failure: a consumer
retries it a few times and dead-letters it, a request answers 500.
"""

from __future__ import annotations

import errno
import socket

import aiokafka.errors
import asyncpg
import httpx
import redis.exceptions
from sqlalchemy import exc as sa

# SQLSTATE codes (and classes) of a server that cannot serve now: 08 connection exception,
# 53 insufficient resources (too many connections, out of memory, disk full), 57P01/57P02
# administrator or crash shutdown, 57P03 cannot connect now (starting up, shutting down, in
# recovery), 57P05 idle session timeout, 25006 read-only transaction (a standby after a failover).
# Not 22 (data), 23 (integrity), 42 (syntax or access) nor 57014 (a statement timeout or a
# cancellation, which a poison event can cause on every attempt).
_UNAVAILABLE_CLASSES = ("08", "53")
_UNAVAILABLE_CODES = frozenset({"57P01", "57P02", "57P03", "57P05", "25006"})
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
        errno.EADDRNOTAVAIL,
    }
)


class Unavailable(Exception):
    """A dependency cannot serve now; try again later."""


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error, raw from asyncpg or wrapped by SQLAlchemy."""
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def _network(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(exc, OSError):
        # asyncio reports a host with several addresses that all refused as one plain OSError.
        return exc.errno in _NETWORK_ERRNOS or (
            exc.errno is None and "Connect call failed" in str(exc)
        )
    return False


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means a dependency is unreachable or overloaded (not the work's fault)."""
    if isinstance(exc, Unavailable | sa.TimeoutError | sa.DisconnectionError):
        return True  # sa.TimeoutError: no pooled connection came free in time
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True
    if isinstance(exc, aiokafka.errors.KafkaConnectionError | aiokafka.errors.KafkaTimeoutError):
        return True
    if isinstance(exc, httpx.TransportError):  # another service unreachable (ServiceClient)
        return True
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    code = sqlstate(exc)
    if code is not None:
        return code.startswith(_UNAVAILABLE_CLASSES) or code in _UNAVAILABLE_CODES
    if isinstance(exc, asyncpg.InterfaceError):  # raw asyncpg (the relay's listener)
        return "connection is closed" in str(exc)
    cause = exc.orig if isinstance(exc, sa.DBAPIError) else None
    return _network(exc) or (cause is not None and _network(cause))
