"""Global Privacy Control sent in the body (``gpc: 1``) counts like the ``Sec-GPC: 1`` header.

Browsers expose GPC to scripts as ``navigator.globalPrivacyControl`` but not every browser sends the
header, so the tracker says it in the event itself. The signal can only take linking away, never add it.
"""

from __future__ import annotations

from collector.pipeline.event import Event


class GpcStep:
    name = "gpc"

    def __call__(self, ev: Event) -> Event:
        if ev.payload.get("gpc"):
            ev.gpc = True
        return ev
