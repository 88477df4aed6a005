"""HTTP of the unsubscribe link (no token: the link's own signature): a page with a button,
and the one-click POST of RFC 8058 (List-Unsubscribe-Post) a mail client sends."""

from __future__ import annotations

from html import escape

from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from clientele_campaigns.mailings import service

router = APIRouter(prefix="/v1/public/unsubscribe", tags=["mailings"])

_PAGE = """<!doctype html><html lang="ru"><meta charset="utf-8"><title>Отписка</title>
<body><p>{text}</p>{form}</body></html>"""


@router.get("/{token}", response_class=HTMLResponse)
async def unsubscribe_page(token: str, runtime: CurrentRuntime) -> HTMLResponse:
    """A confirmation page (a GET changes nothing: mail scanners follow links)."""
    await service.check_token(runtime=runtime, token=token)
    form = f'<form method="post" action="{escape(token)}"><button>Отписаться</button></form>'
    return HTMLResponse(_PAGE.format(text="Отписаться от наших рассылок?", form=form))


@router.post("/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, runtime: CurrentRuntime) -> HTMLResponse:
    """Withdraw the person's e-mail consent (one click; repeating it changes nothing)."""
    await service.unsubscribe(runtime=runtime, token=token)
    return HTMLResponse(_PAGE.format(text="Вы отписаны от наших рассылок.", form=""))
