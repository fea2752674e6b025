"""The console over HTTP: the page and its files (open: they hold no data), and the overview
the page polls (signed-in staff holding ``ops.view``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from services.ops_console.overview import Collector
from services.ops_console.roles import VIEW
from services.ops_console.schemas import Overview
from shared.errors import NotFound
from shared.staff import StaffMember

STATIC = Path(__file__).parent / "static"
#: The files the page is made of: served by name, nothing else from the folder.
PAGE_FILES = {"console.js": "text/javascript", "console.css": "text/css"}
#: No script, style or connection from anywhere but the console itself; no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def collector(request: Request) -> Collector:
    state = request.app.state
    if getattr(state, "ops_collector", None) is None:
        state.ops_collector = Collector(state.context)
    return state.ops_collector


def console_router() -> APIRouter:
    router = APIRouter(tags=["ops console"])

    @router.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @router.get("/static/{name}", include_in_schema=False)
    def page_file(name: str) -> FileResponse:
        if name not in PAGE_FILES:
            raise NotFound(f"no file {name!r}")
        return FileResponse(STATIC / name, media_type=PAGE_FILES[name], headers=SECURITY_HEADERS)

    @router.get(
        "/api/overview",
        response_model=Overview,
        dependencies=[Depends(StaffMember(VIEW))],
        summary="The state of every member of the stack, NATS, the ledgers and the topology",
    )
    async def overview(request: Request) -> dict:
        return await collector(request).overview()

    return router
