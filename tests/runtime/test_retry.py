"""The one HTTP retry policy: the wait a response asks for (Retry-After-Ms, then Retry-After), else
exponential backoff with jitter; the sleep is injected, so nothing here waits for real."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from app.runtime.retry import retry_after_s, retrying


def _client(*answers) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose server gives `answers` in turn (a Response, or an exception to raise)."""
    seen, queue = [], list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(base_url="http://service", transport=httpx.MockTransport(handler)), seen


def _busy(status: int = 429, **headers) -> httpx.Response:
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_retry_after_ms_wins_over_retry_after():
    client, seen = _client(_busy(Retry_After_Ms="250", Retry_After="3"), httpx.Response(200))
    slept = []
    response = retrying({429}, 3, sleep=slept.append)(client.post, "/v1/estimate")
    assert response.status_code == 200 and len(seen) == 2
    assert slept == [0.25]


def test_retry_after_in_seconds_and_as_a_date():
    soon = email.utils.formatdate(time.time() + 5, usegmt=True)
    client, _ = _client(_busy(503, Retry_After="2"), _busy(503, Retry_After=soon), httpx.Response(200))
    slept = []
    assert retrying({503}, 3, sleep=slept.append)(client.get, "/").status_code == 200
    assert slept[0] == 2.0
    assert 3.0 < slept[1] <= 5.0
    assert retry_after_s(_busy(Retry_After="3600")) == 30.0 and retry_after_s(_busy(Retry_After_Ms="1")) == 0.05
    assert retry_after_s(_busy(Retry_After="soon")) == 1.0 == retry_after_s(_busy())


def test_without_a_wait_asked_for_it_backs_off_exponentially_with_jitter():
    client, _ = _client(_busy(), _busy(Retry_After="later"), httpx.ConnectError("refused"), httpx.Response(200))
    slept = []
    assert retrying({429}, 3, sleep=slept.append)(client.get, "/").status_code == 200
    assert [int(s) for s in slept] == [1, 2, 4]  # 1, 2, 4 s plus under a second of jitter each
    assert len(set(s - int(s) for s in slept)) == 3


def test_when_the_retries_run_out_the_last_answer_or_error_comes_back():
    client, seen = _client(*[_busy(Retry_After_Ms="10")] * 3)
    slept = []
    assert retrying({429}, 2, sleep=slept.append)(client.get, "/").status_code == 429
    assert len(seen) == 3 and slept == [0.05, 0.05]  # 10 ms is below the floor
    down, _ = _client(*[httpx.ConnectError("refused")] * 2)
    with pytest.raises(httpx.ConnectError):
        retrying({429}, 1, sleep=slept.append)(down.get, "/")
    refused, seen = _client(httpx.Response(401), httpx.Response(200))
    assert retrying({429}, 5, sleep=slept.append)(refused.get, "/").status_code == 401 and len(seen) == 1


def test_transport_errors_can_be_left_to_the_caller():
    client, seen = _client(httpx.ConnectError("refused"), httpx.Response(200))
    slept = []
    with pytest.raises(httpx.ConnectError):
        retrying({429}, 3, transport_errors=False, sleep=slept.append)(client.get, "/")
    assert slept == [] and len(seen) == 1


async def test_the_async_form_awaits_its_sleep():
    answers = [_busy(Retry_After_Ms="1500"), _busy(Retry_After="1"), httpx.Response(200)]
    client = httpx.AsyncClient(base_url="http://service", transport=httpx.MockTransport(lambda r: answers.pop(0)))
    slept = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    attempts = retrying({429}, 5, asynchronous=True, sleep=sleep)
    assert (await attempts(client.post, "/v1/estimate", json={})).status_code == 200
    assert slept == [1.5, 1.0] and attempts.statistics["attempt_number"] == 3
    await client.aclose()
