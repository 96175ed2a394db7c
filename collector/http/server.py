"""Runs the app under uvicorn (uvloop + httptools) with an orderly shutdown on SIGTERM/SIGINT:
readiness turns unhealthy first, in-flight requests finish, the spool is fsynced, the loader drains
what it can within the deadline, and the process exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import time

import uvicorn

from collector import logs
from collector.http.app import create_app
from collector.http.deadlines import protocol_class
from collector.settings import Settings

log = logging.getLogger("collector")
READINESS_GRACE_S = 0.5


class Server(uvicorn.Server):
    def __init__(self, config, collector):
        super().__init__(config)
        self.collector = collector
        self._exit_requested = 0.0

    def handle_exit(self, sig, frame):
        if not self._exit_requested:
            self.collector.request_shutdown()
            self._exit_requested = time.monotonic()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self):
        # A graceful stop on SIGTERM is a success: exit 0 rather than re-raising the signal afterwards.
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    async def shutdown(self, sockets=None):
        # give load balancers a moment to see /readyz fail before the listener closes
        left = READINESS_GRACE_S - (time.monotonic() - self._exit_requested)
        if self._exit_requested and left > 0:
            import asyncio

            await asyncio.sleep(left)
        await super().shutdown(sockets)


def serve(settings: Settings) -> int:
    logs.setup(settings.log_level)
    app = create_app(settings)
    config = uvicorn.Config(
        # httptools with a deadline and a size cap on request headers (slow clients)
        app, host=settings.host, port=settings.port, loop="uvloop", http=protocol_class(settings.request_timeout_s),
        lifespan="on",
        # the collector's own trusted-proxy check (collector/clientip.py) is the only reader of
        # X-Forwarded-For: uvicorn must not rewrite the client address before it
        proxy_headers=False,
        log_config=None, access_log=False, server_header=False, date_header=False,
        timeout_keep_alive=5, timeout_graceful_shutdown=int(settings.shutdown_deadline_s), backlog=2048,
    )
    server = Server(config, app.state.collector)
    log.info("collector listening on http://%s:%d (storage: %s)", settings.host, settings.port,
             "embedded chDB" if settings.embedded else "ClickHouse over HTTP")
    server.run()
    return 0 if server.started else 1
