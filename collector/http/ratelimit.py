"""Request rate limits: a token bucket per client (keyed on the resolved address) and one overall.

Buckets live in memory, bounded in number: an idle bucket refills to full, and a full bucket is the
same as no bucket, so idle ones are forgotten first when the table is full. IPv6 clients are keyed by
their /64 (one subscriber line); an IPv4-mapped IPv6 address counts as its IPv4 address. Addresses in
the exempt networks have no per-client limit (the overall limit still applies).

A denied request raises ``RateLimited`` with ``Retry-After`` (whole seconds until a token is back).
One check is a monotonic clock read, a keyed hash, a dict lookup and a few float operations.

No client address is kept: buckets (and the memo of which bucket an address belongs to) are keyed
by a keyed BLAKE2b hash of the address, with a random key made when the process starts and never
written anywhere.
"""

from __future__ import annotations

import ipaddress
import math
import time
from typing import Callable

from collector.errors import RateLimited
from collector.privacy.memokey import MemoKey

MAX_CLIENTS = 65536
EXEMPT = b""  # key of an exempt client


class RateLimiter:
    def __init__(self, per_client: float, burst: int, overall: float, exempt: tuple[str, ...] = (),
                 max_clients: int = MAX_CLIENTS, clock: Callable[[], float] = time.monotonic):
        self.rate = float(per_client)
        self.burst = float(max(1, burst))
        self.overall = float(overall)
        self.overall_burst = max(1.0, self.overall)  # one second of the overall rate
        self.max_clients = max(16, max_clients)
        self.clock = clock
        self.exempt = tuple(ipaddress.ip_network(c, strict=False) for c in exempt)
        # hashed bucket key -> [tokens, last refill time]
        self.buckets: dict[bytes, list[float]] = {}
        self._g_tokens = self.overall_burst
        self._g_last = clock()
        self._hash = MemoKey()
        self._keys: dict[bytes, bytes] = {}  # hashed address -> hashed bucket key (EXEMPT when exempt)

    def key(self, ip: str) -> bytes:
        """The (hashed) bucket key of a client address, EXEMPT when the address has no per-client limit."""
        h = self._hash(ip)
        key = self._keys.get(h)
        if key is None:
            if len(self._keys) >= MAX_CLIENTS:
                self._keys.clear()
            plain = self._key(ip)
            key = self._keys[h] = EXEMPT if plain is None else self._hash(plain)
        return key

    def _key(self, ip: str) -> str | None:
        """The bucket of a client address, or None when the address is exempt."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return ip[:64]  # not an address (a test transport, a unix socket): limited as itself
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in n for n in self.exempt):
            return None
        if addr.version == 6:
            return ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)).compressed
        return str(addr)

    def check(self, ip: str) -> None:
        """Take one token for this client and one overall, or raise RateLimited taking none."""
        now = self.clock()
        bucket = None
        key = self.key(ip) if self.rate > 0 else EXEMPT
        if key != EXEMPT:
            bucket = self.buckets.get(key)
            if bucket is not None:
                tokens = bucket[0] + (now - bucket[1]) * self.rate
                if tokens > self.burst:
                    tokens = self.burst
                bucket[0], bucket[1] = tokens, now
                if tokens < 1.0:
                    raise RateLimited("too many requests from this client", retry_after=self._wait(tokens, self.rate))
        if self.overall > 0:
            g = self._g_tokens + (now - self._g_last) * self.overall
            if g > self.overall_burst:
                g = self.overall_burst
            self._g_last = now
            if g < 1.0:
                self._g_tokens = g
                raise RateLimited("the collector is receiving too many requests", retry_after=self._wait(g, self.overall))
            self._g_tokens = g - 1.0
        if key != EXEMPT:
            if bucket is None:
                if len(self.buckets) >= self.max_clients:
                    self._evict(now)
                self.buckets[key] = [self.burst - 1.0, now]
            else:
                bucket[0] -= 1.0

    @staticmethod
    def _wait(tokens: float, rate: float) -> int:
        return max(1, math.ceil((1.0 - tokens) / rate))

    def _evict(self, now: float) -> None:
        """Forget buckets that have refilled (no loss); if still full, the oldest-created half."""
        refill_s = self.burst / self.rate
        idle = [k for k, (_, last) in self.buckets.items() if now - last >= refill_s]
        for k in idle:
            del self.buckets[k]
        if len(self.buckets) >= self.max_clients:
            for k in list(self.buckets)[: len(self.buckets) // 2]:
                del self.buckets[k]


def from_settings(settings) -> RateLimiter:
    return RateLimiter(settings.rate_per_ip, settings.rate_burst, settings.rate_global, settings.rate_exempt)
