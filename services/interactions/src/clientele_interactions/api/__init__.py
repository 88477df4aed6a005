"""Interactions HTTP API: one router per resource."""

from fastapi import APIRouter

from clientele_interactions.api import (
    analytics,
    attachments,
    clients,
    email,
    exports,
    feeds,
    handovers,
    interactions,
    results,
    unmatched,
)


def routers() -> list[APIRouter]:
    return [
        clients.router,
        email.router,
        unmatched.router,
        interactions.router,
        results.router,
        attachments.router,
        handovers.router,
        exports.router,
        feeds.router,
        analytics.router,
    ]
