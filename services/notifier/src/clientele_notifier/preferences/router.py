"""HTTP of the caller's preferences (each employee his own)."""

from __future__ import annotations

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter

from clientele_notifier.preferences import service
from clientele_notifier.preferences.rules import Preferences

router = APIRouter(prefix="/v1/preferences", tags=["preferences"])


@router.get("/me")
async def my_preferences(principal: CurrentPrincipal, runtime: CurrentRuntime) -> Preferences:
    """The caller's preferences (every channel, no quiet hours, no digest until set)."""
    return await service.my_preferences(runtime=runtime, principal=principal)


@router.put("/me")
async def set_my_preferences(
    prefs: Preferences, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> Preferences:
    return await service.set_my_preferences(runtime=runtime, principal=principal, prefs=prefs)
