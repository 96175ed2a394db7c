"""Runs the steps in order, timing each by name and counting drops by reason."""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Iterable, Protocol

from pipeline.event import Dropped, Event


class Step(Protocol):
    name: str

    def __call__(self, event: Event) -> Event: ...


class Pipeline:
    def __init__(self, steps: Iterable[Step]):
        self.steps = list(steps)
        self.step_ns: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.clock: Callable[[], int] = time.perf_counter_ns

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def run(self, event: Event) -> Event | None:
        clock, spent = self.clock, self.step_ns
        try:
            t0 = clock()
            for step in self.steps:
                event = step(event)
                t1 = clock()  # one clock read per step: each step's end is the next one's start
                spent[step.name] += t1 - t0
                t0 = t1
        except Dropped as drop:
            self.dropped[drop.reason] += 1
            return None
        return event


def build_pipeline(settings, keys, consent) -> Pipeline:
    """The product's pipeline, in order. Each step owns one module and one settings section."""
    from pipeline import bots, geo, identity, isp, payload, pseudonym, referrer, scrub, sitesearch, url, useragent, utm
    from pipeline import applocation, gpc

    return Pipeline(
        [
            payload.PayloadStep(settings),
            gpc.GpcStep(),
            url.UrlStep(),
            bots.BotStep(),
            useragent.UserAgentStep(),
            geo.GeoStep(settings),
            applocation.AppLocationStep(settings),
            isp.IspStep(settings),
            referrer.ReferrerStep(),
            utm.UtmStep(),
            sitesearch.SiteSearchStep(),
            scrub.ScrubStep(),
            identity.IdentityStep(keys, consent, settings),
            pseudonym.PseudonymStep(keys, settings),
        ]
    )
