"""Errors as HTTP answers: which status an error gets, and the JSON shape each protocol's clients expect.

OpenAI routes (/v1/...) answer `{"error": {"message", "type", "param", "code"}}`;
api_v2 routes answer `{"message": ...}` as upstream does (but with the right
4xx, never 200 with silence). A busy engine is 503 with `Retry-After`; a 5xx
that a retry cannot fix carries `x-should-retry: false` (the OpenAI client
retries a 5xx twice otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fastapi.responses import JSONResponse

from agent_tts.errors import (AgentTTSError, CheckpointError, EngineBusyError, ForbiddenPathError, OptionError,
                              ReferenceAudioError, RequestError, VoiceNotFoundError)

RETRY_AFTER_SECONDS = 1


@dataclass
class ApiError(Exception):
    """An answer that is an error: status, one-line message, the parameter at fault, and a metrics kind."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    kind: str = "bad_request"
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    @property
    def openai_type(self) -> str:
        return "server_error" if self.status >= 500 else "invalid_request_error"

    def openai_body(self) -> dict:
        return {"error": {"message": self.message, "type": self.openai_type, "param": self.param,
                          "code": self.code}}

    def response(self, openai_shape: bool) -> JSONResponse:
        body = self.openai_body() if openai_shape else {"message": self.message}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param, code)


def busy(message: str, status: int = 503, retry_after_s: float = RETRY_AFTER_SECONDS) -> ApiError:
    """The answer when the engines (or Ray Serve's queues) are full: 503 or 429, and when to try again."""
    return ApiError(status, message, None, "server_busy", kind="busy",
                    headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


def api_error_from(exc: BaseException) -> ApiError:
    """The answer for an error raised while serving a request."""
    if isinstance(exc, ApiError):
        return exc
    message = str(exc) or type(exc).__name__
    if isinstance(exc, VoiceNotFoundError):
        return ApiError(400, message, "voice", "voice_not_found")
    if isinstance(exc, (RequestError, OptionError, ReferenceAudioError, CheckpointError)):
        return ApiError(400, message, None, "invalid_value")
    if isinstance(exc, ForbiddenPathError):
        return ApiError(403, message, None, "path_not_allowed", kind="forbidden")
    if isinstance(exc, EngineBusyError):
        return busy(message)
    if not isinstance(exc, AgentTTSError):
        message = f"internal error: {type(exc).__name__}: {exc}"
    return ApiError(500, message, None, "engine_error", kind="engine", headers={"x-should-retry": "false"})
