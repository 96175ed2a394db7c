"""Keys outside ClickHouse: one file per key (mode 0600) with id, purpose and validity period.

The visitor key rotates every period and is destroyed once ``destroy_after`` has passed since its
period ended (at most 48 h), so no visitor pseudonym can be recomputed or linked across periods
afterwards. The member key is long-lived: member pseudonyms must stay stable for erasure and the
consent ledger. Every creation, rotation and destruction is appended to ``audit.log`` (never key bytes).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from collector.files import replace_synced

try:  # CPython's own SHA-256 (small and fast to copy); OpenSSL's where it is not built
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - Python 3.12+
    try:
        from _sha2 import sha256 as _sha256
    except ImportError:
        from hashlib import sha256 as _sha256

MAX_DESTROY_AFTER_S = 48 * 3600


@dataclass(frozen=True)
class Key:
    id: str
    purpose: str
    not_before: int
    not_after: int
    secret: bytes

    def public(self) -> dict:
        return {"id": self.id, "purpose": self.purpose, "not_before": self.not_before, "not_after": self.not_after}


def shred(path: Path) -> None:
    """Overwrite a key file in place, sync, then unlink it."""
    try:
        size = path.stat().st_size
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"\0" * size)
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()
    except FileNotFoundError:
        pass


class KeyStore:
    def __init__(self, directory: Path, period_s: int = 86400, destroy_after_s: int = 24 * 3600, clock=time.time):
        if destroy_after_s > MAX_DESTROY_AFTER_S:
            destroy_after_s = MAX_DESTROY_AFTER_S
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        self.period_s = period_s
        self.destroy_after_s = destroy_after_s
        self.clock = clock
        self._lock = threading.Lock()
        self._visitor: dict[int, Key] = {}
        self._member: Key | None = None
        self._loaded_mtime = -1.0
        self._next_check = 0.0

    # -- audit -------------------------------------------------------------------------------
    def audit(self, action: str, key: Key, **extra) -> None:
        entry = {"ts": int(self.clock()), "action": action, **key.public(), **extra}
        fd = os.open(self.dir / "audit.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)

    def audit_entries(self) -> list[dict]:
        try:
            return [json.loads(x) for x in (self.dir / "audit.log").read_text().splitlines() if x.strip()]
        except FileNotFoundError:
            return []

    # -- files -------------------------------------------------------------------------------
    def _path(self, key_id: str) -> Path:
        return self.dir / f"{key_id}.key"

    def _store(self, key: Key) -> None:
        doc = {**key.public(), "secret": key.secret.hex()}
        replace_synced(self._path(key.id), json.dumps(doc).encode())

    def _reload(self) -> None:
        try:
            mtime = self.dir.stat().st_mtime
        except FileNotFoundError:
            mtime = 0.0
        if mtime == self._loaded_mtime:
            return
        visitor: dict[int, Key] = {}
        member = None
        for p in self.dir.glob("*.key"):
            try:
                doc = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            key = Key(doc["id"], doc["purpose"], doc["not_before"], doc["not_after"], bytes.fromhex(doc["secret"]))
            if key.purpose == "visitor":
                period = key.not_before // self.period_s
                old = visitor.get(period)
                if old is None or key.id > old.id:
                    visitor[period] = key
            elif key.purpose == "member":
                member = key
        self._visitor, self._member = visitor, member
        self._loaded_mtime = mtime

    def _new_key(self, purpose: str, not_before: int, not_after: int) -> Key:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(not_before))
        key = Key(f"{purpose}-{stamp}-{secrets.token_hex(3)}", purpose, not_before, not_after, secrets.token_bytes(32))
        self._store(key)
        self.audit("create", key)
        return key

    # -- lifecycle ----------------------------------------------------------------------------
    def period(self, at: float | None = None) -> int:
        return int((self.clock() if at is None else at) // self.period_s)

    def maintain(self) -> None:
        """Create the current visitor key and the member key if missing; destroy expired keys."""
        with self._lock:
            self._reload()
            now = self.clock()
            cur = self.period(now)
            if cur not in self._visitor:
                start = cur * self.period_s
                self._visitor[cur] = self._new_key("visitor", start, start + self.period_s)
            if self._member is None:
                self._member = self._new_key("member", int(now), 2**40)
            for period, key in list(self._visitor.items()):
                if now >= key.not_after + self.destroy_after_s:
                    shred(self._path(key.id))
                    del self._visitor[period]
                    self.audit("destroy", key)
            self._loaded_mtime = self.dir.stat().st_mtime
            self._next_check = now + min(60.0, self.period_s / 10)

    def rotate(self) -> Key:
        """Replace the current period's visitor key now (e.g. after suspected exposure)."""
        with self._lock:
            self._reload()
            now = int(self.clock())
            cur = self.period(now)
            old = self._visitor.get(cur)
            key = self._new_key("visitor", cur * self.period_s, (cur + 1) * self.period_s)
            if old is not None:
                shred(self._path(old.id))
                self.audit("destroy", old, reason="rotated")
            self._visitor[cur] = key
            self._loaded_mtime = self.dir.stat().st_mtime
            return key

    def visitor_key(self, at: float | None = None) -> Key:
        now = self.clock()
        if now >= self._next_check:
            self.maintain()
        if at is not None:
            key = self._visitor.get(self.period(at))
            if key is not None:
                return key
        return self._visitor[self.period(now)]

    def visitor_keys(self, at: float | None = None) -> tuple[Key, Key]:
        """``(visitor_key(), visitor_key(at=at))`` with one clock read for both."""
        now = self.clock()
        if now >= self._next_check:
            self.maintain()
        today = self._visitor[int(now // self.period_s)]
        if at is None:
            return today, today
        return today, self._visitor.get(int(at // self.period_s)) or today

    def member_key(self) -> Key:
        if self._member is None:
            self.maintain()
        assert self._member is not None
        return self._member

    def status(self) -> list[dict]:
        with self._lock:
            self._reload()
            keys = list(self._visitor.values()) + ([self._member] if self._member else [])
        out = []
        for k in sorted(keys, key=lambda k: (k.purpose, k.not_before)):
            d = k.public()
            if k.purpose == "visitor":
                d["destroy_at"] = k.not_after + self.destroy_after_s
            out.append(d)
        return out


def mac(key: Key, *parts: str) -> str:
    """HMAC-SHA256 over the parts joined by the ASCII unit separator; the first 128 bits, in hex.

    RFC 2104 computed from the key's inner and outer hash states, made once per key and held on the
    key object (so they go when the key does): each call copies two SHA-256 states instead of
    deriving them from the secret again. Equal to ``hmac.digest(secret, msg, "sha256")``."""
    pads = key.__dict__.get("_pads")
    if pads is None:
        pads = _pads(key)
    inner = pads[0].copy()
    inner.update("\x1f".join(parts).encode())
    outer = pads[1].copy()
    outer.update(inner.digest())
    return outer.digest()[:16].hex()


def _pads(key: Key) -> tuple:
    secret = key.secret if len(key.secret) <= 64 else _sha256(key.secret).digest()
    secret = secret.ljust(64, b"\0")
    pads = (_sha256(bytes(b ^ 0x36 for b in secret)), _sha256(bytes(b ^ 0x5C for b in secret)))
    object.__setattr__(key, "_pads", pads)  # Key is frozen; the pads are derived, not a field
    return pads


def member_pseudonym(key: Key, site: str, member_ref: str) -> str:
    """The member pseudonym: HMAC(K_member, site ‖ member_ref). The one place it is computed."""
    return mac(key, "member", site, member_ref)
