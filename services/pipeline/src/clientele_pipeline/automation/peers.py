"""Other services a rule's step calls over HTTP (ADR 49): the interactions service, where a
`schedule_interaction` step plans a contact, with a service token confined to the deal's
directions and an Idempotency-Key of the firing and the step."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from clientele_shared.auth.tokens import ServiceTokenProvider
from clientele_shared.http.client import ServiceClient
from clientele_shared.observability import get_logger

from clientele_pipeline.settings import PipelineSettings

log = get_logger(__name__)


class PeerUnavailable(Exception):
    """The peer could not answer now (unreachable, 5xx, 429, a request still in progress):
    the step is retried with back-off, with the same Idempotency-Key and the same body
    (``request``, kept on the step: a key sent again with another body is refused)."""

    def __init__(self, reason: str, request: dict[str, Any]) -> None:
        super().__init__(reason)
        self.request = request


class PeerRefused(Exception):
    """The peer refused the request for good (a 4xx other than the transient ones);
    ``blocked``: because a party is in the unwanted counterparty register."""

    def __init__(self, reason: str, *, blocked: bool = False) -> None:
        super().__init__(reason)
        self.blocked = blocked


TRANSIENT = frozenset({408, 425, 429})


@dataclass
class Interactions:
    client: ServiceClient

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> Interactions | None:
        """None when no key to sign service tokens with is configured, or the key file is
        absent (the Kubernetes base mounts it from an optional Secret): its steps then fail,
        recorded."""
        key = settings.auth.private_key_file
        if key is None or not key.is_file():
            log.warning(
                "no key to sign service tokens: schedule_interaction steps will fail",
                private_key_file=None if key is None else str(key),
            )
            return None
        tokens = ServiceTokenProvider.from_settings(settings.service_name, settings.auth)
        return cls(
            ServiceClient(settings.interactions_url, tokens, timeout=settings.interactions_timeout)
        )

    async def plan(self, body: dict[str, Any], directions: Iterable[str], key: str) -> Any:
        """The planned interaction created (or the one this key created before). The body is
        sent canonical (sorted keys): the same request is the same bytes however it was kept."""
        try:
            response = await self.client.request(
                "POST",
                "/v1/interactions",
                directions=directions,
                content=json.dumps(body, sort_keys=True, separators=(",", ":")).encode(),
                headers={"Idempotency-Key": key, "Content-Type": "application/json"},
            )
        except httpx.TransportError as exc:
            reason = f"the interactions service is unreachable: {exc!r}"
            raise PeerUnavailable(reason, body) from None
        if response.status_code == 201:
            return response.json()["interaction"]
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        reason = (
            f"interactions answered {response.status_code} "
            f"{problem.get('title', '')}: {problem.get('detail', response.text[:500])}"
        )
        blocked = response.status_code == 409 and str(problem.get("type", "")).endswith(
            "/counterparty-blocked"
        )
        if (
            response.status_code >= 500
            or response.status_code in TRANSIENT
            or (response.status_code == 409 and not blocked)
        ):
            raise PeerUnavailable(reason, body)
        raise PeerRefused(reason, blocked=blocked)

    async def aclose(self) -> None:
        await self.client.aclose()
