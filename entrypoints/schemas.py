"""The contract's JSON models at the HTTP edge, mapped from the pure domain types."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.model import Attachment, Driver, MessageRequest, MessageResponse, Task, Thread

Kind = Literal["image", "video", "audio", "document"]


class FileModel(BaseModel):
    name: str
    type: Kind
    size: int | None = None
    base64: str | None = None
    url: str | None = None
    mime_type: str | None = None


class UsageModel(BaseModel):
    prompt_tokens: int
    output_tokens: int
    thoughts_tokens: int
    total_tokens: int


class MessageRequestModel(BaseModel):
    id_team_agent: str
    id_team: str
    id_task: str | None = None
    text: str
    images: list[FileModel] = []
    videos: list[FileModel] = []
    audios: list[FileModel] = []
    documents: list[FileModel] = []


class MessageResponseModel(BaseModel):
    id_team_agent: str
    id_team: str
    id_task: str
    created_at: datetime
    text: str
    reasoning: str | None = None
    images: list[FileModel] = []
    videos: list[FileModel] | None = None
    audios: list[FileModel] | None = None
    documents: list[FileModel] | None = None
    event: str | None = None
    is_finished: bool | None = None
    is_error: bool | None = None
    is_interrupted: bool | None = None
    error: str | None = None
    reason: str | None = None
    usage: UsageModel | None = None


class ThreadModel(BaseModel):
    request: MessageRequestModel
    response: MessageResponseModel | None = None


class TaskModel(BaseModel):
    id_task: str
    id_team_agent: str
    id_team: str
    title: str
    content: list[ThreadModel]
    driver: Driver
    created_at: datetime
    updated_at: datetime


class TaskPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    driver: Driver | None = None


class ErrorModel(BaseModel):
    error: str
    detail: str
    field: str | None = None
    request_id: str | None = None


class Mapper:
    """Domain -> contract models; file URLs point at `GET {base}/files/{id_team_agent}/{id_file}`."""

    def __init__(self, base_url: str = "") -> None:
        self._base = base_url.rstrip("/")

    def file(self, id_team_agent: str, attachment: Attachment) -> FileModel:
        url = f"{self._base}/files/{id_team_agent}/{attachment.id_file}" if attachment.id_file else None
        return FileModel(
            name=attachment.name,
            type=attachment.type,
            size=attachment.size,
            url=url,
            mime_type=attachment.mime_type,
        )

    def _files(self, id_team_agent: str, items: tuple[Attachment, ...], kind: str) -> list[FileModel]:
        return [self.file(id_team_agent, a) for a in items if a.type == kind]

    def request(self, request: MessageRequest) -> MessageRequestModel:
        agent, items = request.id_team_agent, request.attachments
        return MessageRequestModel(
            id_team_agent=agent,
            id_team=request.id_team,
            id_task=request.id_task,
            text=request.text,
            images=self._files(agent, items, "image"),
            videos=self._files(agent, items, "video"),
            audios=self._files(agent, items, "audio"),
            documents=self._files(agent, items, "document"),
        )

    def response(self, response: MessageResponse) -> MessageResponseModel:
        agent, items = response.id_team_agent, response.attachments
        usage = response.usage
        return MessageResponseModel(
            id_team_agent=agent,
            id_team=response.id_team,
            id_task=response.id_task,
            created_at=response.created_at,
            text=response.text,
            reasoning=response.reasoning or None,
            images=self._files(agent, items, "image"),
            videos=self._files(agent, items, "video"),
            audios=self._files(agent, items, "audio"),
            documents=self._files(agent, items, "document"),
            event=response.event,
            is_finished=response.is_finished,
            is_error=response.is_error,
            is_interrupted=response.is_interrupted,
            error=response.error,
            reason=response.reason,
            usage=None
            if usage is None
            else UsageModel(
                prompt_tokens=usage.prompt_tokens,
                output_tokens=usage.output_tokens,
                thoughts_tokens=usage.thoughts_tokens,
                total_tokens=usage.total_tokens,
            ),
        )

    def thread(self, thread: Thread) -> ThreadModel:
        return ThreadModel(
            request=self.request(thread.request),
            response=None if thread.response is None else self.response(thread.response),
        )

    def task(self, task: Task) -> TaskModel:
        return TaskModel(
            id_task=task.id_task,
            id_team_agent=task.id_team_agent,
            id_team=task.id_team,
            title=task.title,
            content=[self.thread(t) for t in task.threads],
            driver=task.driver,
            created_at=task.created_at,
            updated_at=task.updated_at,
        )
