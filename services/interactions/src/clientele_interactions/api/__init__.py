"""Interactions HTTP API: one router per resource."""

from fastapi import APIRouter

from clientele_interactions.analytics.router import router as analytics
from clientele_interactions.attachments.router import router as attachments
from clientele_interactions.capture.router import router as capture
from clientele_interactions.clients.router import router as clients
from clientele_interactions.exports.router import router as exports
from clientele_interactions.handovers.router import router as handovers
from clientele_interactions.log.router import router as log
from clientele_interactions.results.router import router as results
from clientele_interactions.unmatched.router import router as unmatched


def routers() -> list[APIRouter]:
    return [
        clients,
        capture,
        unmatched,
        log,
        results,
        attachments,
        handovers,
        exports,
        analytics,
    ]
