"""POST /messages: store the request, then stream the reply as Server-Sent Events."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from domain.errors import InvalidInput, NoActiveRun
from domain.model import Attachment, MessageRequest, is_valid_id
from entrypoints.deps import ServicesDep
from entrypoints.errors import error_response
from entrypoints.forms import FILE_FIELDS, FormError, ParsedForm, parse_form
from entrypoints.routes.openapi import ID, event_stream_response, form_body
from entrypoints.schemas import ErrorModel
from entrypoints.sse import EventStream

router = APIRouter(tags=["messages"])

MESSAGE_FIELDS = {"id_team_agent", "id_team", "id_task", "text"}


def accepts_event_stream(accept: str | None) -> bool:
    """True unless the Accept header rules text/event-stream out."""
    if not accept or not accept.strip():
        return True
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if media.lower() not in ("text/event-stream", "text/*", "*/*"):
            continue
        q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(q) > 0:
                return True
        except ValueError:
            return True
    return False


def required_id(form: ParsedForm, name: str) -> str:
    value = form.fields.get(name, "")
    if not value:
        raise InvalidInput(name, "is required")
    if not is_valid_id(value):
        raise InvalidInput(name, "must be 1-128 letters, digits or _ . : @ - and start with a letter or digit")
    return value


def check_media(accepts: Callable[[str, str], bool] | None, files: Sequence[Attachment]) -> None:
    """Raise FormError 415 naming the first file the model cannot read (before anything is stored)."""
    if accepts is None:
        return
    for attachment in files:
        if not accepts(attachment.type, attachment.mime_type):
            field = next(name for name, kind in FILE_FIELDS.items() if kind == attachment.type)
            detail = f"{attachment.name}: the model cannot read {attachment.mime_type} files in {field}"
            raise FormError(415, field, detail)


def message_request(form: ParsedForm) -> MessageRequest:
    agent, team = required_id(form, "id_team_agent"), required_id(form, "id_team")
    id_task = required_id(form, "id_task") if form.fields.get("id_task") else ""
    text = form.fields.get("text", "")
    if not text.strip():
        raise InvalidInput("text", "is required and must not be blank")
    return MessageRequest(
        id_team_agent=agent,
        id_team=team,
        id_task=id_task,
        text=text,
        created_at=datetime.now(UTC),
        attachments=tuple(form.files),
    )


@router.post(
    "/messages",
    summary="Send a message and stream the reply",
    response_class=Response,
    responses={
        **event_stream_response("The reply as Server-Sent Events"),
        415: {"model": ErrorModel, "description": "The model cannot read the type of an attached file"},
    },
    openapi_extra=form_body(
        ["id_team_agent", "id_team", "text"],
        {"id_team_agent": ID, "id_team": ID, "id_task": ID, "text": {"type": "string", "minLength": 1}},
        files=True,
    ),
)
async def post_message(request: Request, services: ServicesDep) -> Response:
    if not accepts_event_stream(request.headers.get("accept")):
        return error_response(request, 406, "not_acceptable", "this endpoint streams text/event-stream")
    form = await parse_form(
        request, text_fields=MESSAGE_FIELDS, with_files=True, limits=services.limits, blobs=services.blobs
    )
    try:
        message = message_request(form)
        check_media(services.accepts, message.attachments)
        run, _ = await services.conversation.start(message)
    except BaseException:
        agent = form.fields.get("id_team_agent", "")
        for attachment in form.files:
            if attachment.id_file and agent:
                await services.blobs.delete(id_team_agent=agent, id_file=attachment.id_file)
        raise
    conversation = services.conversation

    async def interrupt_on_disconnect() -> None:
        if services.on_disconnect == "interrupt" and conversation.live(run.key) is run:
            with contextlib.suppress(NoActiveRun):
                await conversation.interrupt(key=run.key, reason="client disconnected")

    return EventStream(
        source=services.resume.live(run.key, run.id_run),
        keepalive_s=services.keepalive_s,
        on_disconnect=interrupt_on_disconnect,
    )


class PostMessageApp:
    """`post_message` as a bare ASGI app, routed ahead of its FastAPI route (which stays for the docs).

    The endpoint takes only the request and the app's services, so FastAPI's per-request work (solving
    dependencies, the exit stacks, the route's own exception wrapper) buys it nothing; errors still reach
    the app's exception handlers, which sit outside the router. What only FastAPI's routing applies does not
    reach it: `dependency_overrides`, router-level limits, and the telemetry spans of dependencies and endpoint.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await post_message(request, request.app.state.services)
        await response(scope, receive, send)


def bare_routes(prefixes: Sequence[str]) -> list[Route]:
    return [Route(f"{prefix}/messages", PostMessageApp(), methods=["POST"]) for prefix in prefixes]
