"""The anonymous visitor pseudonym: HMAC(K_visitor[period], site ‖ client_id), else site ‖ ip ‖ user agent;
and the network pseudonym HMAC(K_visitor[today], site ‖ /24 or /48 network), which small-group
suppression counts because a client cannot invent networks.

A client id whose prefix is its creation time (base36 seconds, as the tracker makes them) is keyed
with the key of the period it was created in while that key exists, so a visit survives the daily
rotation. Under GPC/DNT no linkable pseudonym is made (``count_only``), or only the daily IP hash
(``daily_hash``), never the client id.
"""

from __future__ import annotations

from collector.pipeline.event import Event
from collector.pipeline.isp import truncate_ip
from collector.pipeline.network import UNSET, network_of, prefix_key
from collector.privacy.keys import mac


def client_id_created(cid: str) -> float | None:
    head, dot, _ = cid.partition(".")
    if not dot or not 5 <= len(head) <= 8:
        return None
    try:
        return float(int(head, 36))
    except ValueError:
        return None


class PseudonymStep:
    name = "pseudonym"

    def __init__(self, keys, settings):
        self.keys = keys
        self.gpc_policy = settings.gpc_policy
        # network pseudonyms by (site, key id, /24 or /48 network): keyed by the network, never an address
        self._networks: dict[tuple[str, str, bytes], str] = {}

    def network_id(self, key, site: str, ip: str, net=UNSET) -> str:
        """The network pseudonym of ``ip``; ``net``: its ``prefix_key`` when already made."""
        if net is UNSET:
            net = prefix_key(ip)
        if net is None:
            return mac(key, "network", site, truncate_ip(ip, 24) or ip)
        memo_key = (site, key.id, net)
        value = self._networks.get(memo_key)
        if value is None:
            if len(self._networks) >= 65536:
                self._networks.clear()
            value = self._networks[memo_key] = mac(key, "network", site, truncate_ip(ip, 24) or ip)
        return value

    def __call__(self, ev: Event) -> Event:
        row = ev.row
        row["privacy"] = "gpc" if ev.gpc else "standard"
        if ev.table != "events":
            return ev
        cid = ev.payload.get("cid") or ""
        if ev.gpc:
            if self.gpc_policy == "count_only":
                row["visitor_id"] = row["key_id"] = row["network_id"] = ""
                return ev
            cid = ""
        site = ev.site.domain
        shared = ev.shared
        # what the request's events share (one address, mostly one client id): made once for them
        memo = (PSEUDONYM, site, cid)
        hit = shared.get(memo)
        if hit is None:
            if cid:
                today, key = self.keys.visitor_keys(client_id_created(cid))
                visitor = mac(key, "visitor", site, cid)
            else:
                today = key = self.keys.visitor_key()
                visitor = mac(key, "visitor-ip", site, ev.ip, ev.user_agent)
            network = shared.get((NETWORK, site))
            if network is None:
                network = shared[(NETWORK, site)] = self.network_id(today, site, ev.ip, network_of(ev))
            hit = shared[memo] = (visitor, key.id, network)
        row["visitor_id"], row["key_id"], row["network_id"] = hit
        return ev


PSEUDONYM, NETWORK = "pseudonym", "network"  # the request's pseudonyms in ``Event.shared``
