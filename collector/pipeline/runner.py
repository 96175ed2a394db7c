"""Runs the steps in order, timing each by name. The outcome is data: the events that passed and the
drops by reason, for the caller to count once the request is acknowledged."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from collector.pipeline.event import Dropped, Event


class Step(Protocol):
    name: str

    def __call__(self, event: Event) -> Event: ...


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)  # in order, each with its table and row
    dropped: Counter[str] = field(default_factory=Counter)  # by reason


class Pipeline:
    def __init__(self, steps: Iterable[Step]):
        self.steps = list(steps)
        self.step_ns: Counter[str] = Counter()
        self.clock: Callable[[], int] = time.perf_counter_ns

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def apply(self, event: Event) -> Event:
        """One event through every step; raises ``Dropped``."""
        clock, spent = self.clock, self.step_ns
        t0 = clock()
        for step in self.steps:
            event = step(event)
            t1 = clock()  # one clock read per step: each step's end is the next one's start
            spent[step.name] += t1 - t0
            t0 = t1
        return event

    def run(self, events: Iterable[Event]) -> Outcome:
        """The events of one request. A batch goes step by step (each step over every event still in
        it), so it reads the clock twice per step, not per step and event; the outcome is the same."""
        out = Outcome()
        events = events if isinstance(events, list) else list(events)
        if len(events) == 1:
            try:
                out.events.append(self.apply(events[0]))
            except Dropped as drop:
                out.dropped[drop.reason] += 1
            return out
        clock, spent, dropped = self.clock, self.step_ns, out.dropped
        live = events
        t0 = clock()
        for step in self.steps:
            nxt = []
            for event in live:
                try:
                    nxt.append(step(event))
                except Dropped as drop:
                    dropped[drop.reason] += 1
            live = nxt
            t1 = clock()
            spent[step.name] += t1 - t0
            t0 = t1
        out.events.extend(live)
        return out


def build_pipeline(settings, keys, consent) -> Pipeline:
    """The product's pipeline, in order. Each step owns one module and one settings section."""
    from collector.pipeline import bots, geo, identity, isp, payload, pseudonym, referrer, scrub, sitesearch, url, useragent, utm
    from collector.pipeline import applocation, gpc, origin

    return Pipeline(
        [
            origin.OriginStep(origin.OriginPolicy(settings.sites)),
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
