"""Task routes: list, read, create, rename or re-drive, delete, interrupt."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from application.clock import utcnow
from domain.errors import InvalidInput
from domain.model import Driver, TaskKey, is_valid_id
from domain.ports import TaskPage
from entrypoints.auth import team_filter
from entrypoints.deps import ServicesDep, TaskId, TeamAgentId
from entrypoints.errors import error_response
from entrypoints.forms import parse_form
from entrypoints.routes.messages import accepts_event_stream
from entrypoints.routes.openapi import ID, event_stream_response, form_body
from entrypoints.schemas import ErrorModel, Mapper, TaskModel, TaskPatch
from entrypoints.sse import EventStream

router = APIRouter(prefix="/tasks", tags=["tasks"])

# `?id_team=`, or the team of a team-scoped API key (see entrypoints/auth.py)
TeamFilter = Annotated[str | None, Depends(team_filter)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorModel, "description": "No such task for this team agent (or team)"}
}
MAX_LIMIT = 1000


def encode_cursor(updated_at: datetime, id_task: str) -> str:
    raw = f"{int(updated_at.timestamp() * 1_000_000)}:{id_task}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        us, id_task = raw.split(":", 1)
        moment = datetime.fromtimestamp(int(us) / 1_000_000, utcnow().tzinfo)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError, OSError):
        raise InvalidInput("cursor", "is not a cursor this server gave out") from None
    if not is_valid_id(id_task):
        raise InvalidInput("cursor", "is not a cursor this server gave out")
    return moment, id_task


@router.get("/{id_team_agent}", response_model=list[TaskModel], summary="List a team agent's tasks")
async def list_tasks(
    request: Request,
    response: Response,
    services: ServicesDep,
    id_team_agent: TeamAgentId,
    id_team: TeamFilter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    cursor: Annotated[str | None, Query(max_length=400, description="From a `Link: rel=next`")] = None,
    include_content: Annotated[bool, Query(description="False leaves `content` empty")] = True,
    driver: Driver | None = None,
    updated_since: datetime | None = None,
) -> list[TaskModel]:
    page = TaskPage(
        limit=limit,
        before=decode_cursor(cursor) if cursor else None,
        driver=driver,
        updated_since=updated_since,
        include_content=include_content,
    )
    found = await services.tasks.list(id_team_agent=id_team_agent, page=page, id_team=id_team)
    if len(found) == limit:
        last = found[-1]
        next_url = request.url.include_query_params(cursor=encode_cursor(last.updated_at, last.id_task))
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    mapper = Mapper(services.public_base_url)
    return [mapper.task(task) for task in found]


@router.get("/{id_team_agent}/{id_task}", response_model=TaskModel, responses=NOT_FOUND, summary="Read a task")
async def get_task(
    services: ServicesDep, id_team_agent: TeamAgentId, id_task: TaskId, id_team: TeamFilter = None
) -> TaskModel:
    task = await services.tasks.get(key=TaskKey(id_team_agent, id_task), id_team=id_team)
    return Mapper(services.public_base_url).task(task)


@router.post(
    "/{id_team_agent}",
    status_code=201,
    response_model=TaskModel,
    responses={409: {"model": ErrorModel, "description": "id_task is taken"}},
    summary="Create a task whose first message is `text` (answered by the next POST /messages)",
    openapi_extra=form_body(
        ["id_team", "text"], {"id_team": ID, "text": {"type": "string", "minLength": 1}, "id_task": ID}
    ),
)
async def create_task(request: Request, services: ServicesDep, id_team_agent: TeamAgentId) -> JSONResponse:
    form = await parse_form(
        request,
        text_fields={"id_team", "text", "id_task"},
        with_files=False,
        limits=services.limits,
        blobs=services.blobs,
    )
    id_team = form.fields.get("id_team", "")
    if not is_valid_id(id_team):
        raise InvalidInput("id_team", "is required: 1-128 letters, digits or _ . : @ -")
    text = form.fields.get("text", "")
    if not text.strip():
        raise InvalidInput("text", "is required and must not be blank")
    id_task = form.fields.get("id_task") or None
    if id_task is not None and not is_valid_id(id_task):
        raise InvalidInput("id_task", "must be 1-128 letters, digits or _ . : @ -")
    task = await services.tasks.create(id_team_agent=id_team_agent, id_team=id_team, text=text, id_task=id_task)
    model = Mapper(services.public_base_url).task(task)
    return JSONResponse(model.model_dump(mode="json"), status_code=201)


@router.patch(
    "/{id_team_agent}/{id_task}",
    response_model=TaskModel,
    responses=NOT_FOUND,
    summary="Rename a task or change its driver",
)
async def patch_task(
    services: ServicesDep,
    id_team_agent: TeamAgentId,
    id_task: TaskId,
    patch: TaskPatch,
    id_team: TeamFilter = None,
) -> TaskModel:
    if patch.title is None and patch.driver is None:
        raise InvalidInput("body", "give title and/or driver")
    task = await services.tasks.update(
        key=TaskKey(id_team_agent, id_task), id_team=id_team, title=patch.title, driver=patch.driver
    )
    return Mapper(services.public_base_url).task(task)


@router.delete("/{id_team_agent}/{id_task}", responses=NOT_FOUND, summary="Delete a task, its threads and files")
async def delete_task(
    services: ServicesDep, id_team_agent: TeamAgentId, id_task: TaskId, id_team: TeamFilter = None
) -> dict[str, str]:
    await services.tasks.delete(key=TaskKey(id_team_agent, id_task), id_team=id_team)
    return {"status": "deleted", "id_team_agent": id_team_agent, "id_task": id_task}


@router.get(
    "/{id_team_agent}/{id_task}/stream",
    response_class=Response,
    responses={
        **event_stream_response("The latest run's events after `Last-Event-ID`, then live ones until `[DONE]`"),
        **NOT_FOUND,
        400: {"model": ErrorModel, "description": "Malformed event id"},
        406: {"model": ErrorModel, "description": "Accept rules out text/event-stream"},
        409: {"model": ErrorModel, "description": "The event id is of no run of this task, or no run exists"},
    },
    summary="Resume a reply's stream after a reconnect",
)
async def resume_stream(
    request: Request,
    services: ServicesDep,
    id_team_agent: TeamAgentId,
    id_task: TaskId,
    id_team: TeamFilter = None,
    last_event_id: Annotated[str | None, Query(max_length=100, description="Used when the header is absent")] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
) -> Response:
    if not accepts_event_stream(request.headers.get("accept")):
        return error_response(request, 406, "not_acceptable", "this endpoint streams text/event-stream")
    resumption = await services.resume.open(
        key=TaskKey(id_team_agent, id_task), last_event_id=last_event_id_header or last_event_id, id_team=id_team
    )
    return EventStream(source=resumption.source, after=resumption.after, keepalive_s=services.keepalive_s)


@router.post(
    "/{id_team_agent}/{id_task}/interrupt",
    status_code=202,
    responses={**NOT_FOUND, 409: {"model": ErrorModel, "description": "Nothing is running in this task"}},
    summary="Stop the running reply",
)
async def interrupt_task(
    services: ServicesDep, id_team_agent: TeamAgentId, id_task: TaskId, id_team: TeamFilter = None
) -> JSONResponse:
    key = TaskKey(id_team_agent, id_task)
    await services.tasks.get(key=key, id_team=id_team, include_content=False)
    id_run = await services.conversation.interrupt(key=key, reason="interrupted by the user")
    return JSONResponse({"status": "interrupting", "id_run": id_run}, status_code=202)
