"""All configuration, read from the environment and `.env` (see `.env.default` for every name)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_title: str = "agent-stream"
    app_version: str = "0.1.0"
    app_env: str = "DEVELOPMENT"
    log_level: str = "INFO"
    telemetry_enabled: bool = False

    web_server_host: str = "0.0.0.0"
    web_server_port: int = 8000
    web_server_cors_origins: str = "*"
    web_server_cors_credentials: bool = False
    web_server_cors_methods: str = "*"
    web_server_cors_headers: str = "*"
    public_base_url: str = ""

    ai_provider: Literal["gemini", "echo"] = "gemini"
    ai_echo_delay_ms: int = Field(default=30, ge=0)
    ai_system_instruction: str | None = None
    ai_google_gemini_api_key: SecretStr | None = None
    ai_google_gemini_model: str = "gemini-2.5-flash"
    ai_google_gemini_base_url: str | None = None
    ai_google_gemini_api_version: str | None = None
    ai_google_gemini_thinking: str = "auto"
    ai_google_gemini_timeout_s: float = Field(default=120.0, gt=0)
    ai_google_gemini_max_retries: int = Field(default=3, ge=0)
    ai_google_gemini_search: bool = False
    ai_google_gemini_code_execution: bool = False
    ai_google_gemini_inline_limit_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    ai_google_gemini_vertexai: bool = False
    ai_google_cloud_project: str | None = None
    ai_google_cloud_location: str | None = None

    data_dir: Path = Path("data")
    database_url: str = ""
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_timeout_s: float = Field(default=30.0, gt=0)
    database_pool_pre_ping: bool = False
    migrate_on_start: bool = True
    blob_store: Literal["filesystem", "database"] = "filesystem"

    redis_url: str = ""
    redis_key_prefix: str = "agent-stream"
    run_lease_s: float = Field(default=15.0, gt=0)
    run_reap_interval_s: float = Field(default=5.0, gt=0)

    stream_keepalive_s: float = Field(default=15.0, gt=0)
    stream_persist_interval_ms: int = Field(default=1000, ge=50)
    stream_persist_max_per_s: float = Field(default=100.0, gt=0)
    stream_on_disconnect: Literal["continue", "interrupt"] = "continue"
    stream_double_text: Literal["reject", "interrupt"] = "reject"
    stream_buffer_keep_s: float = Field(default=300.0, ge=0)
    shutdown_grace_s: float = Field(default=20.0, ge=0)

    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    max_request_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)
    max_files: int = Field(default=32, ge=0)
    max_text_bytes: int = Field(default=1024 * 1024, ge=1)

    auth_api_keys: SecretStr = SecretStr("")
    rate_limit_streams_per_client: int = Field(default=0, ge=0)
    rate_limit_requests_per_minute: int = Field(default=0, ge=0)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'agent.db').resolve()}"

    @staticmethod
    def split(value: str) -> list[str]:
        return [item.strip() for item in value.split(",") if item.strip()]
