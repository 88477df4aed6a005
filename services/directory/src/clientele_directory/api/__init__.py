"""Directory HTTP API: one router module per resource, the shared request rules in ``common``."""

from fastapi import APIRouter

from clientele_directory.api.organizations import router as organizations_router

ROUTERS: list[APIRouter] = [organizations_router]
