"""Vendor failures translated into LLMError with messages safe to show (never the vendor's text)."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx
from google.genai import errors

from domain.errors import LLMError

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

OVERLOADED = "The model is overloaded or rate-limited, try again in a moment"
UNAVAILABLE = "The model service is unavailable, try again"
REJECTED = "The model rejected the request"
REFUSED_KEY = "The model service refused the API key"
TOO_SLOW = "The model took too long to answer"
UNREACHABLE = "The model service could not be reached, try again"
NOT_FOUND = "The configured model was not found"
FAILED = "The model call failed"

_BY_STATUS = {
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
}


def _code(error: errors.APIError) -> int:
    if isinstance(error.code, int) and error.code:
        return error.code
    return _BY_STATUS.get(str(error.status or ""), 0)


def is_retryable(error: BaseException) -> bool:
    """Whether opening the stream again may succeed."""
    if isinstance(error, errors.APIError):
        return _code(error) in RETRY_STATUSES
    return isinstance(error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def to_llm_error(error: BaseException) -> LLMError:
    """The user-facing LLMError of a vendor or transport failure."""
    if isinstance(error, LLMError):
        return error
    if isinstance(error, errors.APIError):
        code = _code(error)
        if code == 429:
            return LLMError(OVERLOADED, retryable=True)
        if code in (408, 504):
            return LLMError(TOO_SLOW, retryable=True)
        if code >= 500:
            return LLMError(UNAVAILABLE, retryable=True)
        if code in (401, 403):
            return LLMError(REFUSED_KEY)
        if code == 404:
            return LLMError(NOT_FOUND)
        return LLMError(REJECTED)
    if isinstance(error, httpx.TimeoutException):
        return LLMError(TOO_SLOW, retryable=True)
    if isinstance(error, httpx.TransportError):
        return LLMError(UNREACHABLE, retryable=True)
    return LLMError(FAILED)


def retry_after(error: BaseException) -> float | None:
    """Seconds the service asked us to wait (Retry-After header or google.rpc.RetryInfo), if any."""
    if not isinstance(error, errors.APIError):
        return None
    headers: Mapping[str, str] | Any = getattr(error.response, "headers", None) or {}
    header = headers.get("retry-after") or headers.get("Retry-After")
    if header:
        return _parse_retry_after(str(header))
    details = error.details.get("error", error.details) if isinstance(error.details, dict) else {}
    for item in details.get("details", []) if isinstance(details, dict) else []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and (match := re.fullmatch(r"(\d+(?:\.\d+)?)s", delay.strip())):
            return float(match.group(1))
    return None


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
