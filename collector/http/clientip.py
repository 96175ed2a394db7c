"""The client address: the socket peer, or from X-Forwarded-For only when the peer is a trusted proxy.

With a trusted peer, the right-most address in X-Forwarded-For that is not itself a trusted proxy is
the client (addresses to its left could have been written by anyone).

Only proxies' addresses are remembered between requests (to skip re-parsing them); a client's
address is looked at during its request and not kept.
"""

from __future__ import annotations

import ipaddress
import socket

MAX_HOPS = 16  # proxies in a chain worth reading; a longer header costs no more to resolve


class ClientIp:
    def __init__(self, trusted: tuple[str, ...]):
        self.networks = tuple(ipaddress.ip_network(c, strict=False) for c in trusted)
        self._proxies: set[str] = set()
        # (family, network as an integer, mask) per trusted network, for the packed-address check
        self._ranges = tuple((n.version, int(n.network_address), int(n.netmask)) for n in self.networks)

    def is_trusted(self, addr: str, packed: tuple[int, int] | None = None) -> bool:
        """Whether ``addr`` is in a trusted network; ``packed``: its ``_packed`` form when already made."""
        if addr in self._proxies:
            return True
        trusted = self._in_ranges(*packed) if packed is not None else self._check(addr)
        if trusted and len(self._proxies) < 4096:
            self._proxies.add(addr)
        return trusted

    def _in_ranges(self, version: int, n: int) -> bool:
        if version == 6 and n >> 32 == 0xFFFF:  # IPv4-mapped
            version, n = 4, n & 0xFFFFFFFF
        for v, net, mask in self._ranges:
            if v == version and n & mask == net:
                return True
        return False

    def _check(self, addr: str) -> bool:
        packed = _packed(addr)
        if packed is not None:
            return self._in_ranges(*packed)
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in n for n in self.networks)

    def resolve(self, peer: str, forwarded_for: str | None) -> str:
        if not forwarded_for or not self.networks or not self.is_trusted(peer):
            return peer
        for hop in reversed(forwarded_for.split(",")[-MAX_HOPS:]):
            hop = hop.strip()
            if hop.startswith("[") and "]" in hop:
                hop = hop[1 : hop.index("]")]
            elif hop.count(":") == 1:
                hop = hop.split(":")[0]
            packed = _packed(hop)  # parsed once: the syntax check and the trust check
            if packed is None:
                try:
                    ipaddress.ip_address(hop)
                except ValueError:
                    return peer
            if not self.is_trusted(hop, packed):
                return hop
        return peer


def _packed(addr: str) -> tuple[int, int] | None:
    """(4 or 6, the address as an integer) for a plain IPv4 or IPv6 address, else None (the slower
    ``ipaddress`` then decides, e.g. for a scoped IPv6 address)."""
    try:
        if ":" in addr:
            return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, addr), "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big")
    except (OSError, ValueError):
        return None
