"""Routes for operators and the page: `/health` (ready only after warm-up), `/metrics` (Prometheus), `/`."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

from agent_tts.server.context import ServerContext
from agent_tts.server.metrics import CONTENT_TYPE

PAGE_FILES = {"page.js": "text/javascript; charset=utf-8"}


def _page_file(name: str) -> str:
    return (resources.files("agent_tts.server") / "page" / name).read_text(encoding="utf-8")


def operations_routes(context: ServerContext) -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health():
        if context.ready:
            return {"status": "ready", "voice": (await context.service.default_voice()).id}
        if context.start_error is not None:
            return JSONResponse({"status": "failed", "message": context.start_error}, status_code=503)
        return JSONResponse({"status": "warming up"}, status_code=503, headers={"Retry-After": "1"})

    @router.get("/metrics")
    async def metrics():
        return Response(context.metrics.exposition(), media_type=CONTENT_TYPE)

    @router.get("/")
    async def page():
        return HTMLResponse(_page_file("index.html"))

    @router.get("/page/{name}")
    async def page_file(name: str):
        if name not in PAGE_FILES:
            return JSONResponse({"message": f"no page file {name!r}"}, status_code=404)
        return Response(_page_file(name), media_type=PAGE_FILES[name])

    return router
