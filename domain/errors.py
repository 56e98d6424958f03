"""Errors the core speaks in; adapters translate vendor errors into these."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every expected failure. `str(error)` is safe to show a user."""


class InvalidInput(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TaskNotFound(DomainError):
    def __init__(self) -> None:
        super().__init__("task not found")


class FileNotFound(DomainError):
    def __init__(self) -> None:
        super().__init__("file not found")


class TaskExists(DomainError):
    def __init__(self) -> None:
        super().__init__("a task with this id_task already exists")


class TaskBusy(DomainError):
    def __init__(self) -> None:
        super().__init__("a reply is still running in this task; interrupt it or wait for it to end")


class NoActiveRun(DomainError):
    def __init__(self) -> None:
        super().__init__("no reply is running in this task")


class UnknownEventId(DomainError):
    def __init__(self) -> None:
        super().__init__("the event id does not belong to a run of this task")


class ShuttingDown(DomainError):
    def __init__(self) -> None:
        super().__init__("the server is shutting down; retry in a moment")


class LLMError(DomainError):
    """A model failure with a message fit for the user; `retryable` if trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class LLMNotConfigured(LLMError):
    pass
