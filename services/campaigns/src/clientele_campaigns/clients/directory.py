"""The directory's HTTP API as the caller sees it: a list and its members now (a dynamic list's
saved filter is evaluated by the directory on read, so only the directory can resolve it).

The caller's own bearer token goes with each request: the directory answers with exactly what
the caller may see (its directions, its roles), and nothing more than the caller could ask for
directly (ADR 36)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
from clientele_shared.http.middleware import CORRELATION_HEADER
from clientele_shared.http.problems import ProblemError, invalid_field
from clientele_shared.observability import current_correlation_id, get_logger

log = get_logger(__name__)
PAGE = 500
"""Members a page (the directory's largest)."""


@dataclass(frozen=True)
class DirectoryList:
    """A list as the directory resolved it for the caller at one moment."""

    list_id: uuid.UUID
    name: str
    kind: str
    members: list[uuid.UUID]


def _unavailable(detail: str) -> ProblemError:
    return ProblemError(
        503,
        "Directory Unavailable",
        detail,
        kind="directory-unavailable",
        headers={"Retry-After": "5"},
    )


class DirectoryClient:
    """Reads lists from the directory service on behalf of the caller."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_members: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_members = max_members
        self.transport = transport

    async def _get(
        self, client: httpx.AsyncClient, path: str, params: dict[str, str | int] | None = None
    ) -> httpx.Response:
        try:
            response = await client.get(self.base_url + path, params=params)
        except httpx.HTTPError as exc:
            log.warning("directory unreachable", path=path, error=repr(exc))
            raise _unavailable("The directory did not answer; try again.") from None
        if response.status_code >= 500:
            log.warning("directory failed", path=path, status=response.status_code)
            raise _unavailable("The directory could not resolve the list; try again.")
        return response

    async def resolve(self, list_id: uuid.UUID, authorization: str) -> DirectoryList:
        """The list's name and kind and every member the caller sees now (a dynamic list's
        filter evaluated now), page by page; 422 ``unknown_reference`` for a list the caller
        cannot see, 422 ``too_many_members`` past ``max_members``, 503 when the directory is
        unreachable."""
        headers = {"Authorization": authorization, CORRELATION_HEADER: current_correlation_id()}
        async with httpx.AsyncClient(
            headers=headers, timeout=self.timeout, transport=self.transport
        ) as client:
            found = await self._get(client, f"/v1/lists/{list_id}")
            if found.status_code != 200:  # 404: missing, deleted or not the caller's to see
                raise invalid_field("list_id", "no such list", "unknown_reference")
            described = found.json()
            members: dict[uuid.UUID, None] = {}
            params: dict[str, str | int] = {"limit": PAGE, "sort": "created"}
            while True:
                page = await self._get(client, f"/v1/lists/{list_id}/members", params)
                if page.status_code != 200:
                    raise invalid_field("list_id", "no such list", "unknown_reference")
                body = page.json()
                members.update((uuid.UUID(item["id"]), None) for item in body["items"])
                if len(members) > self.max_members:
                    raise invalid_field(
                        "list_id",
                        f"the list has more than {self.max_members} members",
                        "too_many_members",
                    )
                if not body.get("next_cursor"):
                    break
                params = {**params, "cursor": body["next_cursor"]}
        return DirectoryList(
            list_id=list_id, name=described["name"], kind=described["kind"], members=list(members)
        )
