"""Schemathesis over the app's own OpenAPI schema, on both mounts: no 500, no answer that breaks the schema.

The schema documents each route once (at the root), so a second pass sends the same cases under /api/v1.
Bounded: a few examples per operation and mount, against the live server with the echo model.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.echo_llm import EchoLLM
from adapters.memory_runs import InMemoryRunRegistry
from entrypoints.app import create_app
from entrypoints.bootstrap import compose
from entrypoints.settings import Settings
from tests.e2e.conftest import LiveServer
from tests.e2e.shared import module_server
from tests.fakes import FakeBlobStore, FakeTaskStore

server = module_server("fuzz-schema", max_upload_bytes=1 << 20, max_request_bytes=4 << 20)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 20


def app_schema() -> dict[str, Any]:
    """The live app's OpenAPI document, built without I/O (the same routes, over fakes)."""
    settings = Settings(_env_file=None, ai_provider="echo")
    services = compose(
        settings=settings, store=FakeTaskStore(), llm=EchoLLM(), blobs=FakeBlobStore(), registry=InMemoryRunRegistry()
    )
    return create_app(services, settings).openapi()


schema = schemathesis.openapi.from_dict(app_schema())
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@schema.parametrize()
@FUZZ
def test_the_root_mount(case: Any, server: LiveServer) -> None:
    case.call_and_validate(base_url=server.url, checks=CHECKS, timeout=30)


@schema.parametrize()
@FUZZ
def test_the_api_v1_mount(case: Any, server: LiveServer) -> None:
    case.call_and_validate(base_url=server.url + "/api/v1", checks=CHECKS, timeout=30)
