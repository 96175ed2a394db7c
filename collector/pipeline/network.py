"""Facts about a client's network, memoized by the network rather than by the address.

``prefix_key`` reduces an address to its /24 (IPv4) or /48 (IPv6) network, the same networks the
network pseudonym and the optional stored prefix use; an address is never a key. ``NetworkMemo``
wraps a MaxMind-format lookup (a cache is itself a resolver): the facts derived from the database
record are remembered for the whole /24 or /48 only when the database says that whole network
shares one record (its own network is at least as wide), so every answer is exactly what a lookup
of the full address returns. Addresses in finer networks are looked up every time.
"""

from __future__ import annotations

import socket
from typing import Any, Callable

_INET, _INET6, _pton = socket.AF_INET, socket.AF_INET6, socket.inet_pton
_FINER = object()  # this network is split finer than the key: no shared answer


def prefix_key(ip: str) -> bytes | None:
    """The /24 or /48 network of ``ip`` as packed bytes (3 or 6 of them); None when it is no address."""
    try:
        if ":" in ip:
            return _pton(_INET6, ip)[:6]
        return _pton(_INET, ip)[:3]
    except (OSError, ValueError, TypeError):
        return None


UNSET = object()  # "not made yet": a prefix key can itself be None
NET = "net"  # the request's network (``prefix_key`` of its address) in ``Event.shared``


def network_of(ev) -> bytes | None:
    """``prefix_key(ev.ip)``, made once per request (the events of a request share the address)."""
    shared = ev.shared
    key = shared.get(NET, UNSET)
    if key is UNSET:
        key = shared[NET] = prefix_key(ev.ip)
    return key


class NetworkMemo:
    """``derive(record)`` for an address, memoized per /24 or /48 network; bounded (starts over when full)."""

    __slots__ = ("reader", "derive", "memo", "size")

    def __init__(self, reader, derive: Callable[[dict], Any], size: int = 65536):
        self.reader = reader
        self.derive = derive
        self.memo: dict[bytes, Any] = {}
        self.size = size

    def __call__(self, ip: str, key: Any = UNSET) -> Any:
        """The facts for ``ip``; ``key``: its ``prefix_key`` when already made."""
        if self.reader is None or not ip:
            return self.derive({})
        if key is UNSET:
            key = prefix_key(ip)
        if key is None:  # not an address in its plain form: the reader decides, nothing is remembered
            try:
                return self.derive(self.reader.get(ip) or {})
            except ValueError:
                return self.derive({})
        memo = self.memo
        hit = memo.get(key)
        if hit is not None and hit is not _FINER:
            return hit
        try:
            record, prefix_len = self.reader.get_with_prefix_len(ip)
        except ValueError:
            return self.derive({})
        value = self.derive(record or {})
        if hit is None:
            if len(memo) >= self.size:
                memo.clear()
            memo[key] = value if prefix_len <= len(key) * 8 else _FINER
        return value
