"""The `http` estimator waits what a busy service asks for (Retry-After-Ms, finer than Retry-After)
and explains a service it cannot reach; httpx's mock transport stands in for the service."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from app.estimators.http import HttpEstimator, ServiceError
from tests.factories import make_items


def _priced(request: httpx.Request) -> httpx.Response:
    count = len(json.loads(request.content)["items"])
    return httpx.Response(200, json={"estimates": [{"model": "m", "adapter": None, "price": 5.0}] * count})


def test_a_busy_service_is_asked_again_after_the_wait_it_names(monkeypatch):
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)  # tenacity sleeps through time.sleep
    answers = [httpx.Response(429, headers={"Retry-After": "1", "Retry-After-Ms": "300"}),
               httpx.Response(503, headers={"Retry-After": "2"})]
    estimator = HttpEstimator("http://service", transport=httpx.MockTransport(
        lambda request: answers.pop(0) if answers else _priced(request)))
    assert estimator.predict(make_items(3)) == [5.0] * 3
    assert slept == [0.3, 2.0]
    estimator.close()


def test_an_unreachable_service_is_a_clear_error_after_the_retries(monkeypatch):
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)

    def down(request):
        raise httpx.ConnectError("connection refused", request=request)

    estimator = HttpEstimator("http://service", retries=2, transport=httpx.MockTransport(down))
    with pytest.raises(ServiceError, match="cannot reach the service at http://service"):
        estimator.predict(make_items(1))
    assert len(slept) == 2
    estimator.close()
