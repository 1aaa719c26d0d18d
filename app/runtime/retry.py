"""HTTP retries, one policy for every Pricer client (tenacity): wait what the server asks for
(Retry-After-Ms, then Retry-After in seconds or as an HTTP date), else back off exponentially with
jitter, so that clients turned away together do not all come back at the same moment.

`retrying(statuses, retries)(client.post, path, json=body)` returns the response: the first one
whose status is not in `statuses`, or the last one when the retries run out (the caller reports
it); a transport error that outlasts the retries is raised as httpx raised it.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Collection

import httpx
import tenacity

FLOOR_S, CEILING_S = 0.05, 30.0  # a wait asked for is kept within these


def requested_wait(response: httpx.Response) -> float | None:
    """The seconds `response` asks a client to wait (Retry-After-Ms, else Retry-After); None when
    it names none that can be read."""
    milliseconds = _number(response.headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = response.headers.get("retry-after")
    seconds = _number(value)
    if seconds is not None or value is None:
        return seconds
    try:  # the other form HTTP allows: a date
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def _number(text: str | None) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def retry_after_s(response: httpx.Response, default: float = 1.0) -> float:
    """The wait `response` asks for, within FLOOR_S..CEILING_S; `default` when it names none."""
    wait = requested_wait(response)
    return default if wait is None else min(max(wait, FLOOR_S), CEILING_S)


class WaitRetryAfter(tenacity.wait.wait_base):
    """What the last response asks for; after a transport error, or an answer that names no wait,
    `fallback` (default: exponential from 1 s, capped at 10 s, plus up to 1 s of jitter)."""

    def __init__(self, fallback: tenacity.wait.wait_base | None = None):
        self.fallback = fallback or tenacity.wait_exponential_jitter(initial=1, max=10, jitter=1)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        if outcome is not None and not outcome.failed and isinstance(outcome.result(), httpx.Response):
            if requested_wait(outcome.result()) is not None:
                return retry_after_s(outcome.result())
        return self.fallback(retry_state)


def retrying(statuses: Collection[int], retries: int, *, transport_errors: bool = True,
             asynchronous: bool = False, sleep: Callable[[float], object] | None = None,
             fallback: tenacity.wait.wait_base | None = None) -> tenacity.BaseRetrying:
    """A fresh tenacity Retrying (AsyncRetrying when `asynchronous`): up to `retries` more tries
    after the first while the answer's status is in `statuses` or, with `transport_errors`, httpx
    could not reach the server. `sleep`: tenacity's (time.sleep or asyncio.sleep) unless given (tests).
    Fresh per call: a tenacity object keeps the state of the call running through it."""
    retry = tenacity.retry_if_result(lambda response: response.status_code in statuses)
    if transport_errors:
        retry = retry | tenacity.retry_if_exception_type(httpx.TransportError)
    options = dict(
        stop=tenacity.stop_after_attempt(retries + 1), wait=WaitRetryAfter(fallback), retry=retry,
        retry_error_callback=lambda state: state.outcome.result(),  # the last response, or its error raised
    )
    if sleep is not None:
        options["sleep"] = sleep
    return (tenacity.AsyncRetrying if asynchronous else tenacity.Retrying)(**options)
