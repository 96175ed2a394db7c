"""Runs the public and the internal app under uvicorn (uvloop + httptools), each on sockets bound here
(so a port in use fails before anything says "listening"), with an orderly shutdown on SIGTERM/SIGINT:
readiness turns unhealthy first, in-flight requests finish, the spool is fsynced, the loader drains
what it can within the deadline, and the process exits 0.

``serve(settings, workers=N)`` with N > 1: the process binds the public port (``SO_REUSEPORT``) and
forks N workers: worker 0 accepts on that socket, each other worker binds its own socket on the same
port, and the kernel spreads new connections over the group. The parent forwards SIGTERM/SIGINT to them and exits 0 when they all did. Each worker runs the
whole ingest path into its own spool (worker 0: ``DATA_DIR/spool``; worker K: ``DATA_DIR/spool/worker-K``)
and its own loader over it. Worker 0 is the *owner*: it alone serves the internal listener
(``admin.sock``: admin, analyst queries, metrics), runs the migrations and, on the embedded engine,
alone opens chDB. There the other workers' loaders insert through the owner (``POST
/_worker/insert`` on the internal socket, allowed only with a secret the workers inherit in memory at
the fork and that is never written anywhere); with a server DSN every worker inserts directly. Every
spool's deduplication tokens carry the spool's name, so retries stay exactly-once per spool.
Workers die with the parent (``PR_SET_PDEATHSIG``): a kill -9 of the service kills them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hmac
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn
from uvicorn._compat import asyncio_run

from collector import gcpolicy, logs
from collector.http.app import create_app
from collector.http.inline import protocol_class
from collector.metrics import Peers
from collector.peers import PeerErasure, start_follower
from collector.settings import Settings

log = logging.getLogger("collector")
READINESS_GRACE_S = 0.5


class Server(uvicorn.Server):
    def __init__(self, config, collector, internal: uvicorn.Server | None = None, push: "MetricsPush | None" = None):
        super().__init__(config)
        self.collector = collector
        self.internal = internal
        self.push = push  # a worker's metrics, sent to the owner
        self._exit_requested = 0.0

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)  # the lifespan: the collector has started
        if not self.should_exit:
            gcpolicy.settle()  # startup's objects are never scanned by a collection again
            if self.push is not None:
                self.push.start()

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
            if self.push is not None:  # the collector has stopped: its final numbers
                await self.push.stop()


class InternalServer(uvicorn.Server):
    """The internal listener's server: no lifespan of its own and no signal handling; the public
    server stops it once the collector has stopped."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def bind_tcp(host: str, port: int, reuseport: bool = False) -> socket.socket:
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                     flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:  # several workers, each its own socket: the kernel spreads connections over them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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


def _config(app, settings: Settings, beacons=None, counts=None, **kw) -> uvicorn.Config:
    return uvicorn.Config(
        # httptools with a deadline and a size cap on request headers (slow clients); on the public
        # listener, beacons that arrive whole are answered by the protocol itself (collector/http/inline.py)
        app, loop="uvloop", http=protocol_class(settings.request_timeout_s, beacons, counts),
        # the collector's own trusted-proxy check (collector/http/clientip.py) is the only reader of
        # X-Forwarded-For: uvicorn must not rewrite the client address before it
        proxy_headers=False,
        log_config=None, access_log=False, server_header=False, date_header=False, ws="none",
        timeout_keep_alive=5, timeout_graceful_shutdown=int(settings.shutdown_deadline_s), backlog=2048, **kw)


def serve(settings: Settings, workers: int = 1) -> int:
    logs.setup(settings.log_level)
    os.umask(0o077)  # every file this process and its embedded engine create belongs to the service user alone
    try:
        public_sock = bind_tcp(settings.host, settings.port, reuseport=workers > 1)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror or exc)
        return 1
    if workers > 1:
        return supervise(settings, public_sock, workers)
    return _serve(settings, public_sock)


def _serve(settings: Settings, public_sock: socket.socket, worker: int = 0, workers: int = 1,
           secret: str = "") -> int:
    from collector.assembly import assemble
    from collector.service import Collector

    owner = worker == 0
    store = None if owner or not settings.embedded else OwnerStore(settings, secret)
    svc = Collector(assemble(settings, store=store, worker=worker))
    if not owner:
        # the owner migrates and applies pending erasures; a worker only spools and loads its spool
        svc.migrated = True
        svc.parts.pending_erasures = _NoPending()
        start_follower(svc, worker)
    elif workers > 1:
        svc.peers = PeerErasure(svc.parts.data.root, workers)
        svc.metrics.peers = Peers(own=0, workers=workers)
    app = create_app(settings, svc)
    internal = None
    internal_socks: list[socket.socket] = []
    if owner:
        try:
            internal_socks = [bind_unix(svc.parts.data.admin_socket)]
            if settings.internal_port:
                internal_socks.append(bind_tcp("127.0.0.1", settings.internal_port))
        except OSError as exc:
            log.error("cannot open the internal listener: %s", exc.strerror or exc)
            return 1
        internal_app = WorkerGate(app.state.internal, svc, secret) if secret else app.state.internal
        internal = InternalServer(_config(internal_app, settings, counts=svc.counts, lifespan="off"))
    push = None if owner else MetricsPush(settings, svc, worker, secret)
    server = Server(_config(app, settings, beacons=app, counts=svc.counts, lifespan="on"), svc, internal, push)
    if owner:
        log.info("collector listening on http://%s:%d (storage: %s); internal listener on %s%s%s", settings.host,
                 public_sock.getsockname()[1], "embedded chDB" if settings.embedded else "ClickHouse over HTTP",
                 svc.parts.data.admin_socket,
                 f" and http://127.0.0.1:{settings.internal_port}" if settings.internal_port else "",
                 f"; {workers} workers" if workers > 1 else "")
    else:
        log.info("worker %d of %d accepting; spool %s", worker, workers, svc.parts.data.spool)
        threading.Thread(target=_follow_consent, args=(svc,), daemon=True).start()

    async def both():
        if internal is None:
            await server.serve(sockets=[public_sock])
        else:
            await asyncio.gather(server.serve(sockets=[public_sock]), internal.serve(sockets=internal_socks))

    try:
        asyncio_run(both(), loop_factory=server.config.get_loop_factory())
    finally:
        if owner:
            svc.parts.data.admin_socket.unlink(missing_ok=True)
    return 0 if server.started else 1


# -- several workers on one port -------------------------------------------------------------------
WORKER_SECRET_HEADER = "x-collector-worker"


class _NoPending:
    """A worker's view of the pending erasures: the owner applies them."""

    def __bool__(self) -> bool:
        return False

    def apply(self, store) -> int:
        return 0


def _follow_consent(svc) -> None:
    """Consent calls reach whichever worker accepts them, and each appends to the shared ledger file;
    a worker re-reads the file when it grew, so a withdrawal or erasure recorded by another worker
    takes effect here within a second (re-reading only adds withdrawals and erasures: never looser)."""
    consent = svc.consent
    last = -1
    while True:
        try:
            size = consent.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size != last:
            if last != -1:
                with consent._lock:
                    consent._load()
            last = size
        time.sleep(0.5)


def _owner_client(settings: Settings, timeout_s: float):
    """A worker's HTTP client to the owner's internal socket (inserts, metrics)."""
    import httpx

    from collector.paths import DataDir

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(DataDir.of(settings).admin_socket)),
                        base_url="http://collector", timeout=timeout_s)


class OwnerStore:
    """A worker's store on the embedded engine: its loader's inserts run in the owner, the one process
    that may open chDB, through the internal socket. Failures come back as the owner's ``StorageError``
    kinds, so the loader retries, bisects and dead-letters exactly as it does against its own store."""

    def __init__(self, settings: Settings, secret: str):
        self.database = settings.database
        self.embedded = True
        self.dsn = settings.dsn
        self._secret = secret
        self._http = _owner_client(settings, timeout_s=60)

    def _post(self, path: str, body: bytes = b"", params: dict | None = None):
        import httpx

        from collector.errors import TRANSIENT, StorageError

        try:
            r = self._http.post(path, content=body, params=params, headers={WORKER_SECRET_HEADER: self._secret})
        except httpx.HTTPError as exc:
            raise StorageError(f"the owner worker did not answer: {exc}", TRANSIENT) from None
        if r.status_code != 200:
            doc = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            raise StorageError(doc.get("message", r.text[:300]), doc.get("kind", TRANSIENT))
        return r

    def insert_json(self, table: str, data: bytes, token: str) -> None:
        self._post("/_worker/insert", data, {"table": table, "token": token})

    def healthy(self) -> bool:
        from collector.errors import StorageError

        try:
            return self._post("/_worker/healthy").json()["healthy"]
        except StorageError:
            return False

    def command(self, *a, **k):
        from collector.errors import TRANSIENT, StorageError

        raise StorageError("a worker runs no statements: the owner worker does", TRANSIENT)

    query_rows = query_raw = command

    def close(self) -> None:
        self._http.close()


class MetricsPush:
    """A worker's metrics, rendered on its event loop (where its numbers change) and sent to the owner,
    whose ``/metrics`` holds every worker's (``collector.metrics.Peers``): every ``INTERVAL_S``, and once
    more after the worker stopped, so the export ends with its final numbers. Pushes are numbered and
    one at a time, so an older one never replaces a newer one. A push that fails is followed by the
    next one. The owner's answer names the latest flush asked of the workers: the worker flushes its
    own spool (its loader's ``flush_wait``, as a single process does) and its next push says so."""

    INTERVAL_S = 1.0
    QUIET_S = 60.0  # at most one warning this often about failing pushes

    def __init__(self, settings: Settings, collector, worker: int, secret: str):
        self.collector, self.metrics, self.worker, self._secret = collector, collector.metrics, worker, secret
        self._http = _owner_client(settings, timeout_s=5)
        self._task: asyncio.Task | None = None
        self._flush: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self.seq = 0
        self.flushed = 0  # the latest flush carried out
        self._warned_at = -self.QUIET_S

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.INTERVAL_S)
            self._wake.clear()
            if not self._stopping:
                await self.push()

    async def push(self) -> bool:
        """One push; never raises (a failure is logged now and then, and the next push follows)."""
        try:
            self.seq += 1
            answer = await asyncio.to_thread(self._post, self.metrics.render(), self.seq, self.flushed)
        except Exception as exc:  # noqa: BLE001 - e.g. out of file descriptors while rendering
            answer = None
            self._warn(f"{type(exc).__name__}: {exc}")
        if answer is None:
            return False
        wanted = answer.get("flush", 0)
        if isinstance(wanted, int) and wanted > self.flushed and self._flush is None and not self._stopping:
            self._flush = asyncio.create_task(self._carry_out(wanted))
        return True

    async def _carry_out(self, number: int) -> None:
        end = time.monotonic() + 30  # as long as the owner waits
        try:
            while not self._stopping and time.monotonic() < end:  # a stop does not wait for a flush
                if await asyncio.to_thread(self.collector.loader.flush_wait, 0.5):
                    self.flushed = max(self.flushed, number)
                    break
        finally:
            self._flush = None
            self._wake.set()  # say so now, not in a second

    def _post(self, body: bytes, seq: int, flushed: int) -> dict | None:
        import httpx

        try:
            r = self._http.post("/_worker/metrics", content=body,
                                params={"worker": str(self.worker), "seq": str(seq), "flushed": str(flushed)},
                                headers={WORKER_SECRET_HEADER: self._secret})
        except httpx.HTTPError as exc:
            self._warn(str(exc))
            return None
        if r.status_code != 200:
            self._warn(f"the owner answered {r.status_code}: {r.text[:200]}")
            return None
        try:
            doc = r.json()
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def _warn(self, what: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= self.QUIET_S:
            self._warned_at = now
            log.warning("worker %d could not send its metrics to the owner: %s", self.worker, what[:300])

    async def stop(self) -> None:
        """After the collector stopped: the push in flight ends, then the final one."""
        self._stopping = True
        self._wake.set()
        for task in (self._task, self._flush):
            if task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task
        self._warned_at = -self.QUIET_S
        await self.push()
        self._http.close()


class WorkerGate:
    """The owner's internal app, plus the workers' insert and metrics paths (only with the workers' secret)."""

    def __init__(self, app, collector, secret: str):
        self.app, self.collector, self.secret = app, collector, secret.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/_worker/"):
            return await self.app(scope, receive, send)
        from urllib.parse import parse_qs

        import orjson

        from collector.errors import StorageError

        given = dict(scope["headers"]).get(WORKER_SECRET_HEADER.encode(), b"")

        async def answer(status: int, doc: dict) -> None:
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": orjson.dumps(doc)})

        if not hmac.compare_digest(given, self.secret):  # before a byte of the body is read or kept
            return await answer(404, {"error": "not_found", "message": "not found"})
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/_worker/metrics" and self.collector.metrics.peers is not None:
            q = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            try:
                worker, seq, flushed = (_count(q.get(k, "0")) for k in ("worker", "seq", "flushed"))
                wanted = self.collector.metrics.peers.receive(worker, bytes(body).decode("utf-8"), seq, flushed)
            except ValueError as exc:  # UnicodeDecodeError is a ValueError
                return await answer(400, {"error": "bad_request", "message": f"not a worker's metrics: {exc}"[:300]})
            return await answer(200, {"ok": True, "flush": wanted})
        store = self.collector.store
        try:
            if scope["path"] == "/_worker/insert":
                q = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
                await asyncio.to_thread(store.insert_json, q["table"], bytes(body), q["token"])
                return await answer(200, {"ok": True})
            if scope["path"] == "/_worker/healthy":
                return await answer(200, {"healthy": await asyncio.to_thread(store.healthy)})
        except StorageError as exc:
            return await answer(503, {"error": "storage", "message": exc.message, "kind": exc.kind})
        return await answer(404, {"error": "not_found", "message": "not found"})


def _count(text: str) -> int:
    """A whole number as a query gives it: digits only (``int`` would also take signs, blanks and ``_``)."""
    if not text.isdigit() or len(text) > 18:
        raise ValueError(f"{text[:20]!r} is not a whole number")
    return int(text)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def supervise(settings: Settings, public_sock: socket.socket, workers: int) -> int:
    """Fork the workers on the bound socket; forward SIGTERM/SIGINT; exit 0 when all exited 0."""
    from collector.assembly import keystore
    from collector.paths import DataDir

    data = DataDir.of(settings).ensure()
    leftover = [k for k in data.worker_spools() if k >= workers and any(data.for_worker(k).spool.glob("*.seg"))]
    if leftover:
        log.warning("spools of workers %s from an earlier run with more workers: starting %d workers so they "
                    "are loaded", ", ".join(map(str, leftover)), max(leftover) + 1)
        workers = max(leftover) + 1
    # the current keys exist before any worker pseudonymizes, so every worker uses the same ones
    keystore(settings, data).maintain()
    secret = secrets.token_urlsafe(32)
    parent = os.getpid()
    children: dict[int, int] = {}

    def fork(k: int) -> int:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _die_with_parent()
                if os.getppid() != parent:
                    os._exit(1)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                sock = public_sock
                if k:  # worker 0 keeps the socket bound first; the others join its SO_REUSEPORT group
                    sock = bind_tcp(public_sock.getsockname()[0], public_sock.getsockname()[1], reuseport=True)
                    public_sock.close()
                code = _serve(settings, sock, k, workers, secret)
            except BaseException:  # noqa: BLE001 - a worker reports and exits; the supervisor counts it
                log.exception("worker %d failed", k)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        return pid

    stopping = threading.Event()
    owner_signalled: list[int] = []

    def signal_owner_when_alone(sig) -> None:
        # the owner stops last: on chDB the others' final drains insert through it
        if stopping.is_set() and not owner_signalled and all(k == 0 for k in children.values()):
            owner_signalled.append(sig)
            for pid in list(children):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def forward(sig, frame):
        stopping.set()
        for pid, k in list(children.items()):
            if k:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        signal_owner_when_alone(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    children[fork(0)] = 0
    # the others start once the owner serves the internal socket (they insert through it on chDB)
    deadline = time.monotonic() + 120
    while not _answers(data.admin_socket) and time.monotonic() < deadline and not stopping.is_set():
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            log.error("the owner worker exited during startup")
            forward(signal.SIGTERM, None)
            return 1
        time.sleep(0.05)
    for k in range(1, workers):
        if not stopping.is_set():
            children[fork(k)] = k
    public_sock.close()
    failed = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        k = children.pop(pid, None)
        if k is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            failed += 1
            log.error("worker %d exited with %d", k, code)
            if not stopping.is_set():  # one worker down: stop the others rather than serve half
                forward(signal.SIGTERM, None)
        signal_owner_when_alone(owner_signalled[0] if owner_signalled else signal.SIGTERM)
    return 1 if failed else 0


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()
