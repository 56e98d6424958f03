"""HTTP routes: four routers, each mounted at the root and under /api/v1."""

from fastapi import APIRouter

from entrypoints.routes import files, health, messages, tasks

ROUTERS: tuple[APIRouter, ...] = (health.router, messages.router, tasks.router, files.router)
"""Included by the app one by one (not through one parent router): FastAPI matches and enters every level of
nesting on each request, and an open stream keeps each level's coroutines alive."""

__all__ = ["ROUTERS"]
