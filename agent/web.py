"""The agent's HTTP endpoint: ``/metrics``, ``/healthz``, ``/readyz``, and any routers mounted next to them.

One process serves everything (in embedded chDB mode only one process may open the data directory), so
:func:`build_app` takes extra FastAPI routers (the annotator review UI) and :class:`WebServer` runs the app
with uvicorn on a background thread of ``lookout run``. The port is bound before the thread starts, so a
port in use is a one-line error at start, not a silent thread death.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence

import structlog
import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from agent.errors import LookoutError
from agent.metrics import Health

log = structlog.get_logger(__name__)


def probe_router(health: Health) -> APIRouter:
    """``/metrics`` (Prometheus text format), ``/healthz`` (alive) and ``/readyz`` (ready to consume)."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        ok, reasons = health.readiness()
        body = {"status": "ready" if ok else "not ready", "reasons": reasons}
        return JSONResponse(body, status_code=200 if ok else 503)

    return router


def build_app(health: Health, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The FastAPI app: probes and metrics, then every router given (e.g. the review UI)."""
    app = FastAPI(title="lookout agent", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(probe_router(health))
    for router in routers:
        app.include_router(router)
    return app


class WebServer:
    """uvicorn serving ``app`` on ``host:port`` from a daemon thread.

    Args:
        app: The ASGI app (usually from :func:`build_app`).
        host: Interface to bind.
        port: Port to bind (0 picks a free one; see :attr:`port` after :meth:`start`).
        path: What it serves, for the log line and the error (``/metrics``, ``/v1/traces``).
        fix: What to do when the port is taken (the error's second half).
    """

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        *,
        path: str = "/metrics",
        fix: str = "set LOOKOUT_METRICS__PORT to a free port, or 0 to disable the endpoint",
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.path = path
        self.fix = fix
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind now (raise a one-line :class:`LookoutError` if the port is taken), then serve in the background."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise LookoutError(
                f"cannot listen for {self.path} on {self.host}:{self.port} ({exc.strerror}); {self.fix}"
            ) from None
        sock.listen(64)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(target=lambda: server.run(sockets=[sock]), name="lookout-web", daemon=True)
        self._thread.start()
        log.info("endpoint listening", url=f"http://{self.host}:{self.port}{self.path}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
