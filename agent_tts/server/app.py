"""The server as a FastAPI app: `create_app(service, settings)` puts the protocol adapters over one speech service.

The adapters (openai_api.py, api_v2.py, websocket_api.py) translate
requests into `SpeechService.stream` calls and chunks into bytes; they hold
no synthesis logic. The app starts the service (load + warm-up) in the
background when it starts, so `/health` says "warming up" until then, and
closes it when it stops. A Ray Serve ingress can make the same app over a
service of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from agent_tts import __version__
from agent_tts.errors import AgentTTSError
from agent_tts.server.access_log import AccessLog
from agent_tts.server.api_errors import ApiError
from agent_tts.server.api_v2 import api_v2_routes
from agent_tts.server.auth import BearerAuth
from agent_tts.server.context import ServerContext
from agent_tts.server.openai_api import openai_routes
from agent_tts.server.operations import operations_routes
from agent_tts.server.settings import ServerSettings
from agent_tts.server.speech_service import SpeechService
from agent_tts.server.websocket_api import websocket_routes

logger = logging.getLogger(__name__)


async def _start_service(context: ServerContext) -> None:
    try:
        await context.service.start()
    except Exception as exc:  # noqa: BLE001 - reported by /health and the log; requests still get errors
        context.start_error = f"{type(exc).__name__}: {exc}"
        logger.error("the speech service did not start: %s", context.start_error)
        return
    context.ready = True
    logger.info("ready")


def create_app(service: SpeechService | None = None, settings: ServerSettings | None = None,
               control: Callable[[str], None] | None = None) -> FastAPI:
    """The app over `service` (default: `LocalSpeechService()`, the voice registry in this process).

    `control` receives api_v2's `/control` commands ("exit", "restart"); without it `/control` answers 501.
    """
    if service is None:
        from agent_tts.server.local_service import LocalSpeechService

        service = LocalSpeechService()
    context = ServerContext.create(service, settings or ServerSettings(), control)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        starting = asyncio.ensure_future(_start_service(context))
        try:
            yield
        finally:
            starting.cancel()
            await service.close()

    app = FastAPI(title="agent-tts", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.context = context
    for routes in (openai_routes, api_v2_routes, websocket_routes, operations_routes):
        app.include_router(routes(context))

    def error_answer(request: Request, error: ApiError):
        return error.response(openai_shape=request.url.path.startswith("/v1/"))

    async def any_error(request: Request, exc: Exception):
        error = context.answered_error(exc)
        if error.status >= 500:
            logger.error("%s %s: %s", request.method, request.url.path, error.message,
                         exc_info=None if isinstance(exc, AgentTTSError) else exc)
        return error_answer(request, error)

    for kind in (ApiError, AgentTTSError, Exception):  # Exception: also logged with its traceback by Starlette
        app.add_exception_handler(kind, any_error)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = "not_found" if exc.status_code == 404 else "invalid_request"
        error = ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", None, code,
                         kind="not_found" if exc.status_code == 404 else "bad_request")
        context.metrics.errors.labels(error.kind).inc()
        return error_answer(request, error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error_answer(request, context.answered_error(ApiError(400, f"invalid request: {exc.errors()}")))

    if context.settings.api_key:
        app.add_middleware(BearerAuth, api_key=context.settings.api_key,
                           on_refused=lambda: context.metrics.errors.labels("auth").inc())
    app.add_middleware(AccessLog)
    return app
