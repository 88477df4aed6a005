"""What every interactions router depends on: the clock, the settings, the roles that may write,
the attachment storage and a bounded upload."""

from __future__ import annotations

from typing import Annotated

from clientele_shared.auth.dependencies import require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.problems import ProblemError
from clientele_shared.storage import AttachmentStorage
from fastapi import Depends, Request, UploadFile

from clientele_interactions.clock import Clock
from clientele_interactions.settings import InteractionsSettings


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
Logger = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.ADMIN,
            Role.HEAD_OF_SALES,
            Role.SALES,
            Role.MARKETER,
            Role.SERVICE,
            admit_confined=True,
        )
    ),
]
"""Who may log or plan a contact: the writers, and a service confined to a deal's directions
(an automation rule's planned contact, ADR 49), which may do nothing else here."""
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Manager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.HEAD_OF_SALES, Role.SERVICE))]


def storage_of(request: Request) -> AttachmentStorage:
    storage: AttachmentStorage = request.app.state.storage
    return storage


Storage = Annotated[AttachmentStorage, Depends(storage_of)]


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The uploaded bytes, 413 past ``limit`` (read no further than that)."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ProblemError(
            413,
            "Content Too Large",
            f"The file may have at most {limit} bytes.",
            kind="content-too-large",
        )
    return data
