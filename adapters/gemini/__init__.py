"""The Google Gemini adapter of the LLM port (google-genai SDK, streamed over the caller's httpx client)."""

from adapters.gemini.config import GeminiConfig
from adapters.gemini.llm import GeminiLLM
from adapters.gemini.mime import supported_mime

__all__ = ["GeminiConfig", "GeminiLLM", "supported_mime"]
