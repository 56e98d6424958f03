"""Settings of the Gemini adapter and the request options derived from them."""

from __future__ import annotations

from dataclasses import dataclass

from google.genai import types

THINKING_LEVELS = ("minimal", "low", "medium", "high")
NON_THINKING = ("image", "tts", "gemini-2.0", "gemini-1.5")
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GeminiConfig:
    """How to reach Gemini and what to ask of it; built from the service settings, never from env vars.

    `thinking` is "off", "auto", a token budget ("1024", "-1" for dynamic) or a level ("low", "medium",
    "high"). `inline_limit_bytes` bounds the base64 size of the attachments sent inside a request; larger
    ones go through the Files API (Gemini Developer API only). The SDK applies one timeout to every phase
    of a request, so `timeout_s` bounds connecting and each wait for streamed bytes alike, while
    `connect_timeout_s` bounds the short Files API status calls.
    """

    api_key: str | None = None
    model: str = "gemini-2.5-flash"
    base_url: str | None = None
    api_version: str | None = None
    thinking: str = "auto"
    system_instruction: str | None = None
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    max_retries: int = 3
    retry_base_delay_s: float = 0.5
    google_search: bool = False
    code_execution: bool = False
    inline_limit_bytes: int = 20 * MB
    file_poll_interval_s: float = 1.0
    vertexai: bool = False
    project: str | None = None
    location: str | None = None

    def __post_init__(self) -> None:
        value = self.thinking.strip().lower()
        if value not in ("off", "auto", *THINKING_LEVELS) and not _is_int(value):
            raise ValueError(f"thinking must be off, auto, a token budget or one of {THINKING_LEVELS}")
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_retries < 0 or self.retry_base_delay_s < 0:
            raise ValueError("max_retries and retry_base_delay_s must not be negative")
        if self.inline_limit_bytes <= 0 or self.file_poll_interval_s <= 0:
            raise ValueError("inline_limit_bytes and file_poll_interval_s must be positive")

    @property
    def configured(self) -> bool:
        return bool(self.api_key) or self.vertexai


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def thinking_config(model: str, thinking: str) -> types.ThinkingConfig | None:
    """The ThinkingConfig for `thinking` on `model` (None leaves the model's default)."""
    value = thinking.strip().lower()
    name = model.lower()
    if any(marker in name for marker in NON_THINKING):
        return None
    if value == "off":
        if "2.5" in name and "pro" not in name:
            return types.ThinkingConfig(thinking_budget=0)
        return None
    if value == "auto":
        return types.ThinkingConfig(include_thoughts=True)
    if value in THINKING_LEVELS:
        return types.ThinkingConfig(include_thoughts=True, thinking_level=types.ThinkingLevel(value.upper()))
    budget = int(value)
    return types.ThinkingConfig(include_thoughts=budget != 0, thinking_budget=budget)


def generate_config(config: GeminiConfig) -> types.GenerateContentConfig:
    """The GenerateContentConfig of a streamed reply."""
    tools: list[types.Tool] = []
    if config.google_search:
        tools.append(types.Tool(google_search=types.GoogleSearch()))
    if config.code_execution:
        tools.append(types.Tool(code_execution=types.ToolCodeExecution()))
    return types.GenerateContentConfig(
        system_instruction=config.system_instruction or None,
        thinking_config=thinking_config(config.model, config.thinking),
        tools=tools or None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
