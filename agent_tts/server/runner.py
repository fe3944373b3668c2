"""Run the app on uvicorn: the binding rule, graceful shutdown with a deadline, and api_v2's `/control`.

Loopback by default; binding any other address needs an API key or an
explicit `no_auth`. On SIGTERM/SIGINT (or `/control?command=exit`) the server
stops taking connections, lets the requests in progress finish for up to
`shutdown_deadline` seconds, then cancels what is left (each cancelled
stream stops within one AR step) and closes the engines.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys

import uvicorn
from fastapi import FastAPI

from agent_tts.errors import AgentTTSError

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 20  # the largest WebSocket message a client may send


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, api_key: str | None, no_auth: bool) -> None:
    """A non-loopback address needs a key (or the operator's explicit choice to serve without one)."""
    if not is_loopback(host) and not api_key and not no_auth:
        raise AgentTTSError(f"--host {host} makes the server reachable from other machines: pass --api-key KEY "
                            "(clients send Authorization: Bearer KEY) or --no-auth to serve without a key")


class ServerRunner:
    """Serves one app; `control` is what api_v2's `/control` calls (exit, or restart after the shutdown)."""

    def __init__(self, host: str, port: int, shutdown_deadline: float) -> None:
        self.host = host
        self.port = port
        self.shutdown_deadline = shutdown_deadline
        self.restart = False
        self._server: uvicorn.Server | None = None

    def control(self, command: str) -> None:
        logger.info("/control: %s", command)
        self.restart = command == "restart"
        if self._server is not None:
            self._server.should_exit = True

    def run(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, host=self.host, port=self.port, log_config=None, access_log=False,
                                timeout_graceful_shutdown=self.shutdown_deadline, ws_max_size=MAX_MESSAGE_BYTES)
        self._server = uvicorn.Server(config)
        self._server.run()
        if self.restart:
            logger.info("restarting")
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
