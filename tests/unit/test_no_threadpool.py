"""Every endpoint and dependency is a coroutine function: FastAPI runs a plain `def` in a thread pool,
a thread hop (and a wait for the GIL) on every request."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import Match, Route

from entrypoints.routes.messages import PostMessageApp
from tests.unit.apps import fake_app


def calls(dependant: Any) -> list[Any]:
    found = [dependant.call] if dependant.call is not None else []
    for child in dependant.dependencies:
        found += calls(child)
    return found


def api_routes(routes: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        else:  # an included router (FastAPI keeps it whole) or a mount
            inner = getattr(getattr(route, "original_router", route), "routes", [])
            found += api_routes(list(inner))
    return found


def test_no_route_or_dependency_runs_in_a_thread_pool() -> None:
    app = fake_app()
    routes = api_routes(list(app.routes))

    sync = {
        f"{route.path} -> {call.__name__}"
        for route in routes
        for call in calls(route.dependant)
        if not inspect.iscoroutinefunction(call)
    }

    assert len(routes) > 10
    assert sync == set()


def test_messages_are_routed_to_the_bare_endpoint_first() -> None:
    app = fake_app()
    scope = {"type": "http", "method": "POST", "path": "/api/v1/messages", "root_path": ""}
    for path in ("/messages", "/api/v1/messages"):
        first = next(route for route in app.router.routes if route.matches({**scope, "path": path})[0] == Match.FULL)
        assert isinstance(first, Route) and isinstance(first.app, PostMessageApp)
