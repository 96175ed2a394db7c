"""Where CLI commands run: through the running collector's internal API, or on local data when no
collector runs. The choice is made once per command line (``connect``); commands only print.

On the embedded engine only the serving process may open the data (chDB allows one process per data
path), so with a collector running everything goes through it.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from typing import Protocol

import httpx

from collector import credentials
from collector.errors import CollectorError, StorageError
from collector.http.auth import proof
from collector.paths import DataDir


class Backend(Protocol):
    running: bool

    def query(self, sql: str, fmt: str, role: str = "admin") -> bytes: ...
    def migrate(self) -> list[str] | None: ...
    def forget(self, site: str, member_ref: str) -> dict[str, int]: ...
    def inventory(self) -> list[dict]: ...
    def keys_status(self) -> list[dict]: ...
    def keys_rotate(self) -> dict: ...
    def spool_status(self) -> dict: ...
    def flush(self) -> dict | None: ...
    def close(self) -> None: ...


class CommandError(CollectorError):
    """A command could not be carried out; the message says why."""


class Remote:
    """The running collector's admin API."""

    running = True

    def __init__(self, base: str, token: str, transport: httpx.BaseTransport | None = None, analyst: str = ""):
        self.analyst = analyst
        self.http = httpx.Client(base_url=base, transport=transport, headers={"Authorization": f"Bearer {token}"},
                                 timeout=120)

    def _call(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        return self._call_as(None, method, path, body)

    def _call_as(self, token: str | None, method: str, path: str, body: dict | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            resp = self.http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CommandError(f"the running collector did not answer: {exc}") from None
        if resp.status_code >= 400:
            try:
                msg = resp.json().get("message", resp.text)
            except ValueError:
                msg = resp.text
            raise CommandError(msg)
        return resp

    def query(self, sql: str, fmt: str, role: str = "admin") -> bytes:
        if role == "admin":
            return self._call("POST", "/admin/query", {"sql": sql, "format": fmt}).content
        resp = self._call_as(self.analyst, "POST", "/api/query", {"sql": sql, "format": fmt})
        return resp.content

    def migrate(self) -> list[str] | None:
        return None  # the running collector applies migrations at startup

    def forget(self, site: str, member_ref: str) -> dict[str, int]:
        return self._call("POST", "/admin/forget", {"site": site, "member_ref": member_ref}).json()["removed"]

    def inventory(self) -> list[dict]:
        return self._call("GET", "/admin/inventory").json()

    def keys_status(self) -> list[dict]:
        return self._call("GET", "/admin/keys").json()

    def keys_rotate(self) -> dict:
        return self._call("POST", "/admin/keys/rotate").json()

    def spool_status(self) -> dict:
        return self._call("GET", "/admin/spool").json()

    def flush(self) -> dict | None:
        return self._call("POST", "/admin/flush").json()

    def close(self) -> None:
        self.http.close()


class Local:
    """The data directory opened by this process (no collector is running)."""

    running = False

    def __init__(self, settings):
        self.settings = settings
        self.data = DataDir.of(settings)
        self._store = None

    @property
    def store(self):
        from collector.assembly import store_for

        if self._store is None:
            self._store = store_for(self.settings)
        return self._store

    def query(self, sql: str, fmt: str, role: str = "admin") -> bytes:
        return self.store.run_sandboxed(sql, role, fmt).body

    def migrate(self) -> list[str] | None:
        from collector.storage import migrate

        return migrate.apply(self.store, self.settings)

    def forget(self, site: str, member_ref: str) -> dict[str, int]:
        import threading

        from collector.assembly import keystore, spool_for
        from collector.delivery.deadletters import DeadLetters
        from collector.erase import erase_member
        from collector.privacy.consent import ConsentState
        from collector.privacy.erasure import PendingErasures

        s = self.settings
        return erase_member(s, site, member_ref, keys=keystore(s, self.data), consent=ConsentState(self.data.consent),
                            spool=spool_for(s, self.data), loader_lock=threading.Lock(),
                            dead_letters=DeadLetters(self.data.dead_letters, s.dead_letter_days), store=self.store,
                            pending=PendingErasures(self.data.pending_erasures))

    def inventory(self) -> list[dict]:
        from collector.privacy import inventory

        return inventory.inventory(self.store)

    def _keys(self):
        from collector.assembly import keystore

        return keystore(self.settings, self.data)

    def keys_status(self) -> list[dict]:
        keys = self._keys()
        keys.maintain()
        return keys.status()

    def keys_rotate(self) -> dict:
        return self._keys().rotate().public()

    def spool_status(self) -> dict:
        from collector.assembly import spool_for
        from collector.delivery.checkpoint import CheckpointFile
        from collector.delivery.deadletters import DeadLetters
        from collector.delivery.loader import status

        if not self.data.spool.is_dir():
            raise CommandError(f"no spool at {self.data.spool} (is COLLECTOR_DATA_DIR right?)")

        def of(data) -> dict:
            return status(spool_for(self.settings, data), CheckpointFile(data.checkpoint).read(),
                          DeadLetters(data.dead_letters, self.settings.dead_letter_days), running=False)

        report = of(self.data)
        others = self.data.worker_spools()  # ``serve --workers N`` left spools of its other workers
        if others:
            report["workers"] = [{"worker": k, "reported": True, **of(self.data.for_worker(k))} for k in others]
        return report

    def flush(self) -> dict | None:
        return None  # the caller replays the spool in the foreground

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def internal_transport(data: DataDir) -> httpx.HTTPTransport:
    return httpx.HTTPTransport(uds=str(data.admin_socket))


def verified(data: DataDir, token: str, transport: httpx.BaseTransport) -> bool:
    """Whether the collector answering on this data directory's socket holds this admin token: it
    must answer a fresh nonce with the token's proof before the token is ever sent."""
    nonce = secrets.token_hex(16)
    try:
        with httpx.Client(base_url="http://collector", transport=transport, timeout=5) as c:
            resp = c.get("/admin/hello", params={"nonce": nonce})
    except httpx.HTTPError:
        return False
    try:
        answer = resp.json().get("proof", "")
    except ValueError:
        return False
    return resp.status_code == 200 and isinstance(answer, str) and hmac.compare_digest(answer, proof(token, nonce))


def connect(settings) -> Backend:
    """The running collector of this data directory if one answers on its internal socket, else the
    local data. The socket lives in the 0700 data directory, and the collector must prove it holds
    the admin token before the CLI sends it: no port to guess, no credential to a stranger."""
    data = DataDir.of(settings)
    sock = data.admin_socket
    if not sock.exists():
        return Local(settings)
    st = sock.stat()
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
        raise CommandError(f"{sock} is not a socket of this user: refusing to use it")
    token = settings.admin_token or credentials.read(data.admin_token)
    if not token:
        raise CommandError(f"no usable admin token in {data.admin_token}: cannot talk to the running collector")
    transport = internal_transport(data)
    probe = httpx.HTTPTransport(uds=str(sock))
    try:
        if not verified(data, token, probe):
            try:
                with httpx.Client(transport=probe, timeout=2) as c:
                    c.get("http://collector/healthz")
            except httpx.HTTPError:
                return Local(settings)  # a stale socket: no collector runs
            raise CommandError(f"the process on {sock} could not prove it is this data directory's collector "
                               "(wrong admin token?): nothing was sent to it")
    finally:
        probe.close()
    analyst = settings.analyst_token or credentials.read(data.analyst_token)
    return Remote("http://collector", token, transport, analyst)


__all__ = ["Backend", "CommandError", "Local", "Remote", "StorageError", "connect"]
