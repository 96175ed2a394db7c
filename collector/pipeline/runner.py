"""Runs the steps in order, timing each by name. The outcome is data: the events that passed and the
drops by reason, for the caller to count once the request is acknowledged."""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Iterable, Protocol

from collector.pipeline.event import Dropped, Event


SAMPLE = 8


class Step(Protocol):
    """Changes the event in place (and returns it), or raises ``Dropped``."""

    name: str

    def __call__(self, event: Event) -> Event: ...


class Outcome:
    __slots__ = ("events", "dropped")

    def __init__(self):
        self.events: list[Event] = []  # in order, each with its table and row
        self.dropped: dict[str, int] = {}  # by reason (a plain dict: one per request)


def _over(step: Step, live: list[Event], owners: list[Outcome]) -> None:
    """``step`` over every event of ``live``; a dropped event leaves ``live``, and its owner ``owners``
    at the same place, its drop counted on that outcome. No list is rebuilt unless an event is dropped."""
    start = 0
    while True:
        ev = None
        try:
            for ev in (live if start == 0 else live[start:]):
                step(ev)
            return
        except Dropped as drop:
            i = live.index(ev, start)  # by identity: events have no equality of their own
            del live[i]
            dropped = owners.pop(i).dropped
            dropped[drop.reason] = dropped.get(drop.reason, 0) + 1
            start = i


class Pipeline:
    def __init__(self, steps: Iterable[Step]):
        self.steps = list(steps)
        self.step_ns: Counter[str] = Counter()
        self.clock: Callable[[], int] = time.perf_counter_ns
        self._singles = 0

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def apply(self, event: Event, weight: int = 1) -> Event:
        """One event through every step, timed (each step's time counted ``weight``-fold); raises ``Dropped``."""
        clock, spent = self.clock, self.step_ns
        t0 = clock()
        for step in self.steps:
            step(event)
            t1 = clock()  # one clock read per step: each step's end is the next one's start
            spent[step.name] += (t1 - t0) * weight
            t0 = t1
        return event

    def _apply_untimed(self, event: Event) -> Event:
        for step in self.steps:
            step(event)
        return event

    def run(self, events: Iterable[Event]) -> Outcome:
        """The events of one request. A batch goes step by step (each step over every event still in
        it), so it reads the clock twice per step, not per step and event; the outcome is the same."""
        out = Outcome()
        events = events if isinstance(events, list) else list(events)
        if len(events) == 1:
            # one single-event request in SAMPLE is timed step by step, its times counted SAMPLE-fold:
            # the step timers are an estimate that costs one clock read per step on those requests only
            self._singles += 1
            try:
                if self._singles % SAMPLE:
                    out.events.append(self._apply_untimed(events[0]))
                else:
                    out.events.append(self.apply(events[0], SAMPLE))
            except Dropped as drop:
                out.dropped[drop.reason] = 1
            return out
        clock, spent = self.clock, self.step_ns
        live, owners = list(events), [out] * len(events)
        t0 = clock()
        for step in self.steps:
            _over(step, live, owners)
            t1 = clock()
            spent[step.name] += t1 - t0
            t0 = t1
        out.events.extend(live)
        return out


    def run_many(self, requests: list[list[Event]]) -> list[Outcome]:
        """Several requests' events through the steps together, step by step as one batch (each step's
        code and memories stay hot across them, and the clock is read twice per step for all), each
        request keeping its own outcome: its events in order and its drops."""
        outs = [Outcome() for _ in requests]
        live = [ev for evs in requests for ev in evs]
        owners = [out for out, evs in zip(outs, requests) for _ in evs]
        clock, spent = self.clock, self.step_ns
        t0 = clock()
        for step in self.steps:
            _over(step, live, owners)
            t1 = clock()
            spent[step.name] += t1 - t0
            t0 = t1
        for out, event in zip(owners, live):
            out.events.append(event)
        return outs


def build_pipeline(settings, keys, consent) -> Pipeline:
    """The product's pipeline, in order. Each step owns one module and one settings section."""
    from collector.pipeline import bots, geo, identity, isp, payload, pseudonym, referrer, scrub, sitesearch, url, useragent, utm
    from collector.pipeline import applocation, gpc, origin
    from collector.pipeline.page import PageMemo

    pages = PageMemo()  # shared by the steps that make the page fields (url … scrub)
    return Pipeline(
        [
            origin.OriginStep(origin.OriginPolicy(settings.sites)),
            payload.PayloadStep(settings),
            gpc.GpcStep(),
            url.UrlStep(pages),
            bots.BotStep(),
            useragent.UserAgentStep(),
            geo.GeoStep(settings),
            applocation.AppLocationStep(settings),
            isp.IspStep(settings),
            referrer.ReferrerStep(),
            utm.UtmStep(),
            sitesearch.SiteSearchStep(),
            scrub.ScrubStep(pages),
            identity.IdentityStep(keys, consent, settings),
            pseudonym.PseudonymStep(keys, settings),
        ]
    )
