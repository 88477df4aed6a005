"""Calls to another service's internal API: with our service token and the correlation id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from clientele_shared.auth.tokens import ServiceTokenProvider
from clientele_shared.http.middleware import CORRELATION_HEADER
from clientele_shared.observability import current_correlation_id


class ServiceClient:
    """An HTTP client for one peer service; every request carries who we are and the trace."""

    def __init__(
        self,
        base_url: str,
        tokens: ServiceTokenProvider,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.tokens = tokens
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def request(
        self, method: str, path: str, *, directions: Iterable[str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A request with our service token, or with one confined to ``directions`` (a call
        on behalf of records of those directions only)."""
        token = (
            self.tokens.authorization_header()
            if directions is None
            else self.tokens.confined_header(directions)
        )
        headers = {
            **kwargs.pop("headers", {}),
            **token,
            CORRELATION_HEADER: current_correlation_id(),
        }
        return await self._http.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()
