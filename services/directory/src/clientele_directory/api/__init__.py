"""Directory HTTP API: one router module per resource, the shared request rules in ``common``."""

from fastapi import APIRouter

from clientele_directory.api.imports import router as imports_router
from clientele_directory.api.lists import router as lists_router
from clientele_directory.api.register import router as register_router
from clientele_directory.api.staff import directions_router
from clientele_directory.attributes.router import router as attributes_router
from clientele_directory.auth.router import router as auth_router
from clientele_directory.employees.router import router as employees_router
from clientele_directory.exports.router import router as exports_router
from clientele_directory.merging.router import router as merging_router
from clientele_directory.organizations.router import router as organizations_router
from clientele_directory.persons.router import router as persons_router
from clientele_directory.search.router import router as search_router

ROUTERS: list[APIRouter] = [
    exports_router,
    imports_router,
    search_router,  # before the routers whose /{id} paths would take its fixed paths
    organizations_router,
    merging_router,
    persons_router,
    attributes_router,
    lists_router,
    register_router,
    directions_router,
    employees_router,
    auth_router,
]
