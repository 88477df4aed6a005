"""HTTP of templates: check one before it is used (the fields it needs, its problems)."""

from __future__ import annotations

from clientele_shared.auth.dependencies import CurrentPrincipal
from fastapi import APIRouter

from clientele_campaigns.templates.rules import TemplateCheck, TemplateParts, check

router = APIRouter(prefix="/v1/mail-templates", tags=["mailings"])


@router.post("/check")
async def check_template(parts: TemplateParts, _principal: CurrentPrincipal) -> TemplateCheck:
    """Compile a template in the sandbox: the fields it refers to, those every recipient must
    have, whether it has an unsubscribe link, and every problem with its part and line."""
    return check(parts)
