"""HTTP routes: one router, mounted at the root and under /api/v1."""

from fastapi import APIRouter

from entrypoints.routes import files, health, messages, tasks

router = APIRouter()
router.include_router(health.router)
router.include_router(messages.router)
router.include_router(tasks.router)
router.include_router(files.router)

__all__ = ["router"]
