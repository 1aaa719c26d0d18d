"""Admission by measured latency: admit only what can be answered in time, shed the rest at once.

A fixed in-flight limit sized for the GPU (2 x max_num_seqs) lets a CPU service queue requests for
tens of seconds under overload: at 4x capacity the admitted requests waited 15.7 s p50 and 48.3 s p99
(docs/api.md). Here the limit follows Little's law over what the service actually delivers:

    throughput X  ~ EWMA of (mean requests in flight during a request, time-averaged) / (its latency)
    limit         = clamp(X * target, PRICER_ADMISSION_FLOOR, PRICER_MAX_INFLIGHT)

with the target PRICER_ADMISSION_TARGET_S, by default 0.8 x PRICER_MEMBER_TIMEOUT_S: what is admitted is
answered before the ensemble's members hit their deadline (on an emulated AVX2 machine, 16 requests
in flight made the LLM member miss its 10 s in 160 of 266 answers: docs/api.md).

While latency stays under the target the limit sits above the load and grows with it; once the
engine is saturated X stops growing, the limit stops at what X answers within the target, and
every request over it gets 429 with Retry-After (seconds, as HTTP has it) and Retry-After-Ms: the time
the measured rate takes to answer the demand it turned away in the last second, with +-25% jitter,
so that clients honouring it come back spread out instead of in one storm of retries (a 429 is cheap,
but thousands a second are not). Cheap enough for the hot path: a few floats per request.
"""

from __future__ import annotations

import math
import random
import time


class LatencyAdmission:
    def __init__(self, target_s: float | None, floor: int, ceiling: int, alpha: float = 0.2):
        self.target_s = target_s
        self.floor = max(1, min(floor, ceiling))
        self.ceiling = ceiling
        self.alpha = alpha
        self.rate: float | None = None  # requests answered per second, as measured
        self.samples = 0
        self.inflight = 0
        self._shed_second = 0  # the whole second of the last shed, and how many were shed in it
        self._shed_now = 0
        self._shed_before = 0  # in the second before it
        self._area = 0.0  # integral of `inflight` over time (request-seconds)
        self._at = time.perf_counter()

    def _advance(self, now: float) -> None:
        self._area += self.inflight * (now - self._at)
        self._at = now

    def enter(self) -> tuple[float, float]:
        """A request admitted: returns its ticket for `leave`."""
        now = time.perf_counter()
        self._advance(now)
        self.inflight += 1
        return now, self._area

    def leave(self, ticket: tuple[float, float], answered: bool) -> None:
        """A request done; an answered one is a throughput sample (its time-averaged concurrency / latency)."""
        now = time.perf_counter()
        self._advance(now)
        self.inflight -= 1
        started, area = ticket
        latency = now - started
        if answered and latency > 0:
            self.observe(latency, (self._area - area) / latency)

    @property
    def enabled(self) -> bool:
        return bool(self.target_s)

    def observe(self, latency_s: float, concurrency: float) -> None:
        """One answered request: its latency and the mean number in flight while it ran (itself included)."""
        if latency_s <= 0 or concurrency <= 0:
            return
        sample = concurrency / latency_s
        self.rate = sample if self.rate is None else (1 - self.alpha) * self.rate + self.alpha * sample
        self.samples += 1

    @property
    def limit(self) -> int:
        if not self.enabled or self.rate is None:
            return self.ceiling  # nothing measured yet: the fixed limit holds
        return max(self.floor, min(self.ceiling, math.floor(self.rate * self.target_s)))

    def admits(self, inflight: int) -> bool:
        return inflight < self.limit

    def shed(self) -> int:
        """A request turned away: returns its Retry-After-Ms (see the module docstring)."""
        second = int(time.monotonic())
        if second != self._shed_second:
            self._shed_before = self._shed_now if second == self._shed_second + 1 else 0
            self._shed_second, self._shed_now = second, 0
        self._shed_now += 1
        return self.retry_after_ms(max(self._shed_now, self._shed_before))

    def retry_after_ms(self, turned_away: int, jitter: bool = True) -> int:
        """How long the measured rate takes to answer `turned_away` requests (50 ms to 60 s)."""
        if not self.rate:
            return 1000
        wait = 1000 * max(1, turned_away) / self.rate * (random.uniform(0.75, 1.25) if jitter else 1.0)
        return int(min(60_000, max(50, math.ceil(wait))))

    def state(self) -> dict:
        return {"limit": self.limit, "target_s": self.target_s, "measured_per_s": None if self.rate is None else round(self.rate, 3),
                "floor": self.floor, "ceiling": self.ceiling, "samples": self.samples}
