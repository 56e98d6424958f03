"""What routes depend on, as `Annotated[..., Depends()]` aliases over the app's Services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from domain.model import ID_PATTERN
from entrypoints.bootstrap import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
TeamAgentId = Annotated[str, Path(pattern=ID_PATTERN, description="Team agent id")]
TaskId = Annotated[str, Path(pattern=ID_PATTERN, description="Task id")]
FileId = Annotated[str, Path(pattern=ID_PATTERN, description="File id")]
