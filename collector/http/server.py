"""Runs the public and the internal app under uvicorn (uvloop + httptools), each on sockets bound here
(so a port in use fails before anything says "listening"), with an orderly shutdown on SIGTERM/SIGINT:
readiness turns unhealthy first, in-flight requests finish, the spool is fsynced, the loader drains
what it can within the deadline, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from pathlib import Path

import uvicorn
from uvicorn._compat import asyncio_run

from collector import logs
from collector.http.app import create_app
from collector.http.deadlines import protocol_class
from collector.settings import Settings

log = logging.getLogger("collector")
READINESS_GRACE_S = 0.5


class Server(uvicorn.Server):
    def __init__(self, config, collector, internal: uvicorn.Server | None = None):
        super().__init__(config)
        self.collector = collector
        self.internal = internal
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
            await asyncio.sleep(left)
        try:
            await super().shutdown(sockets)
        finally:
            if self.internal is not None:
                self.internal.should_exit = True


class InternalServer(uvicorn.Server):
    """The internal listener's server: no lifespan of its own and no signal handling; the public
    server stops it once the collector has stopped."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def bind_tcp(host: str, port: int) -> socket.socket:
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                     flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def bind_unix(path: Path) -> socket.socket:
    """The internal socket, mode 0600 (in the 0700 data directory). A stale socket file is replaced;
    one another process still answers on is not."""
    if path.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise OSError(f"another collector already serves {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return sock


def _config(app, settings: Settings, **kw) -> uvicorn.Config:
    return uvicorn.Config(
        # httptools with a deadline and a size cap on request headers (slow clients)
        app, loop="uvloop", http=protocol_class(settings.request_timeout_s),
        # the collector's own trusted-proxy check (collector/http/clientip.py) is the only reader of
        # X-Forwarded-For: uvicorn must not rewrite the client address before it
        proxy_headers=False,
        log_config=None, access_log=False, server_header=False, date_header=False, ws="none",
        timeout_keep_alive=5, timeout_graceful_shutdown=int(settings.shutdown_deadline_s), backlog=2048, **kw)


def serve(settings: Settings) -> int:
    logs.setup(settings.log_level)
    os.umask(0o077)  # every file this process and its embedded engine create belongs to the service user alone
    try:
        public_sock = bind_tcp(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror or exc)
        return 1
    app = create_app(settings)
    svc = app.state.collector
    try:
        internal_socks = [bind_unix(svc.parts.data.admin_socket)]
        if settings.internal_port:
            internal_socks.append(bind_tcp("127.0.0.1", settings.internal_port))
    except OSError as exc:
        log.error("cannot open the internal listener: %s", exc.strerror or exc)
        return 1
    internal = InternalServer(_config(app.state.internal, settings, lifespan="off"))
    server = Server(_config(app, settings, lifespan="on"), svc, internal)
    log.info("collector listening on http://%s:%d (storage: %s); internal listener on %s%s", settings.host,
             public_sock.getsockname()[1], "embedded chDB" if settings.embedded else "ClickHouse over HTTP",
             svc.parts.data.admin_socket,
             f" and http://127.0.0.1:{settings.internal_port}" if settings.internal_port else "")

    async def both():
        await asyncio.gather(server.serve(sockets=[public_sock]), internal.serve(sockets=internal_socks))

    try:
        asyncio_run(both(), loop_factory=server.config.get_loop_factory())
    finally:
        svc.parts.data.admin_socket.unlink(missing_ok=True)
    return 0 if server.started else 1
