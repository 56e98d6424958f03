"""GET /files/{id_team_agent}/{id_file}: the bytes of an uploaded or generated file."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from domain.errors import FileNotFound
from entrypoints.auth import check_file_team
from entrypoints.deps import FileId, ServicesDep, TeamAgentId
from entrypoints.schemas import ErrorModel

router = APIRouter(prefix="/files", tags=["files"])


def content_disposition(name: str) -> str:
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name) or "file"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get(
    "/{id_team_agent}/{id_file}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"*/*": {}}, "description": "The bytes, typed as sniffed at upload"},
        404: {"model": ErrorModel},
    },
    summary="Download a file of a task",
)
async def get_file(
    request: Request, services: ServicesDep, id_team_agent: TeamAgentId, id_file: FileId
) -> StreamingResponse:
    info = await services.blobs.info(id_team_agent=id_team_agent, id_file=id_file)
    if info is None:
        raise FileNotFound()
    await check_file_team(request, services.tasks, info)
    return StreamingResponse(
        services.blobs.read(id_team_agent=id_team_agent, id_file=id_file),
        media_type=info.mime_type,
        headers={
            "Content-Length": str(info.size),
            "Content-Disposition": content_disposition(info.name),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )
