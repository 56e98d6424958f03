"""GeminiLLM: the LLM port over the google-genai async client, streaming through our own httpx client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import httpx
from google import genai
from google.genai import types

from adapters.gemini.attachments import AttachmentParts, check_supported
from adapters.gemini.config import GeminiConfig, generate_config, thinking_config
from adapters.gemini.errors import is_retryable, retry_after, to_llm_error
from adapters.gemini.files_api import FileCache, FileUploader
from adapters.gemini.history import build_contents, payload_bytes
from adapters.gemini.mapping import ReplyMapper
from adapters.gemini.pump import Pump
from adapters.gemini.retry import backoff_delay
from adapters.gemini.titles import clean_title, title_prompt
from domain.errors import LLMNotConfigured
from domain.events import LLMEvent, Loading
from domain.model import MessageRequest, Thread
from domain.ports import BlobStore

log = logging.getLogger(__name__)

NOT_CONFIGURED = "The Gemini API key is not configured (set AI_GOOGLE_GEMINI_API_KEY)"
CLIENT_FAILED = "The Gemini client could not be set up (check the Vertex AI project, location, credentials)"
TITLE_TIMEOUT_S = 30.0


class GeminiLLM:
    """Streams Gemini replies as LLM events: text, thoughts, media, tool steps, usage and replay state.

    `http_client` belongs to the caller (who closes it); the genai client is built on first use.
    """

    def __init__(self, config: GeminiConfig, *, blobs: BlobStore, http_client: httpx.AsyncClient) -> None:
        self._config = config
        self._blobs = blobs
        self._http = http_client
        self._client: genai.Client | None = None
        self._lock = asyncio.Lock()
        self._files = FileCache()

    async def stream(self, *, history: Sequence[Thread], request: MessageRequest) -> AsyncIterator[LLMEvent]:
        client = await self._genai()
        check_supported(request)
        config = self._config
        uploader = (
            None
            if config.vertexai
            else FileUploader(
                client=client,
                blobs=self._blobs,
                poll_interval_s=config.file_poll_interval_s,
                request_timeout_s=config.connect_timeout_s,
            )
        )
        resolver = AttachmentParts(
            blobs=self._blobs, cache=self._files, uploader=uploader, limit=config.inline_limit_bytes
        )
        earlier = [thread.request for thread in history]
        reserved = payload_bytes(history, request)
        async with contextlib.aclosing(resolver.resolve(earlier, request, reserved=reserved)) as loadings:
            async for loading in loadings:
                yield loading
        contents = build_contents(history, request, resolver.parts)
        async with contextlib.aclosing(self._reply(client, contents, generate_config(config))) as events:
            async for event in events:
                yield event

    async def _reply(
        self, client: genai.Client, contents: list[types.Content], options: types.GenerateContentConfig
    ) -> AsyncGenerator[LLMEvent, None]:
        async def open_stream() -> AsyncIterator[types.GenerateContentResponse]:
            return await client.aio.models.generate_content_stream(
                model=self._config.model, contents=list(contents), config=options
            )

        mapper = ReplyMapper()
        for attempt in itertools.count():
            async with Pump(open_stream) as pump:
                try:
                    chunk = await pump.next()
                except Exception as error:
                    delay = self._retry_delay(attempt, error)
                    if delay is None:
                        log.warning("gemini stream failed to open: %r", error)
                        raise to_llm_error(error) from error
                    log.info("gemini stream failed to open (%r), retry in %.2fs", error, delay)
                else:
                    while chunk is not None:
                        for event in mapper.events(chunk):
                            yield event
                        try:
                            chunk = await pump.next()
                        except Exception as error:
                            log.warning("gemini stream failed: %r", error)
                            raise to_llm_error(error) from error
                    break
            yield Loading()
            await asyncio.sleep(delay)
        for event in mapper.close():
            yield event

    def _retry_delay(self, attempt: int, error: Exception) -> float | None:
        if attempt >= self._config.max_retries or not is_retryable(error):
            return None
        return backoff_delay(attempt, self._config.retry_base_delay_s, retry_after(error))

    async def title(self, *, text: str) -> str | None:
        if not text.strip() or not self._config.configured:
            return None
        try:
            client = await self._genai()
            async with asyncio.timeout(min(TITLE_TIMEOUT_S, self._config.timeout_s)):
                response = await client.aio.models.generate_content(
                    model=self._config.model,
                    contents=title_prompt(text),
                    config=types.GenerateContentConfig(
                        thinking_config=thinking_config(self._config.model, "off"),
                        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
                    ),
                )
            content = response.candidates[0].content if response.candidates else None
            parts = content.parts if content is not None and content.parts else []
            answer = "".join(part.text for part in parts if part.text and not part.thought)
        except Exception as error:
            log.info("gemini title failed: %r", error)
            return None
        return clean_title(answer)

    async def _genai(self) -> genai.Client:
        if not self._config.configured:
            raise LLMNotConfigured(NOT_CONFIGURED)
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        self._client = await asyncio.to_thread(self._build)
                    except Exception as error:
                        log.warning("gemini client setup failed: %r", error)
                        raise LLMNotConfigured(CLIENT_FAILED) from error
        return self._client

    def _build(self) -> genai.Client:
        config = self._config
        options = types.HttpOptions(
            httpx_async_client=self._http,
            timeout=int(config.timeout_s * 1000),
            base_url=config.base_url or None,
            api_version=config.api_version or None,
        )
        if not config.vertexai:
            return genai.Client(vertexai=False, api_key=config.api_key, http_options=options)
        if config.project:
            return genai.Client(vertexai=True, project=config.project, location=config.location, http_options=options)
        return genai.Client(vertexai=True, api_key=config.api_key, http_options=options)
