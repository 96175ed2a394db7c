"""The client address: the socket peer, or from X-Forwarded-For only when the peer is a trusted proxy.

With a trusted peer, the right-most address in X-Forwarded-For that is not itself a trusted proxy is
the client (addresses to its left could have been written by anyone).

Only proxies' addresses are remembered between requests (to skip re-parsing them); a client's
address is looked at during its request and not kept.
"""

from __future__ import annotations

import ipaddress

MAX_HOPS = 16  # proxies in a chain worth reading; a longer header costs no more to resolve


class ClientIp:
    def __init__(self, trusted: tuple[str, ...]):
        self.networks = tuple(ipaddress.ip_network(c, strict=False) for c in trusted)
        self._proxies: set[str] = set()

    def is_trusted(self, addr: str) -> bool:
        if addr in self._proxies:
            return True
        trusted = self._check(addr)
        if trusted and len(self._proxies) < 4096:
            self._proxies.add(addr)
        return trusted

    def _check(self, addr: str) -> bool:
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
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer
            if not self.is_trusted(hop):
                return hop
        return peer
