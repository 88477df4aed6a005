"""Interactions HTTP API: one router per resource."""

from fastapi import APIRouter

from clientele_interactions.api import attachments, clients, handovers, interactions, results


def routers() -> list[APIRouter]:
    return [
        clients.router,
        interactions.router,
        results.router,
        attachments.router,
        handovers.router,
    ]
