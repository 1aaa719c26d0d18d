"""The frontier estimator against an OpenAI-compatible API (httpx's mock transport stands in for
the network: the request it sends and the answers it reads are what is checked)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from app.config import Settings
from app.estimators.base import EstimatorOptions, create
from app.estimators.frontier import FrontierError, FrontierEstimator, messages_for
from tests.factories import make_items


def _reply(content: str) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": content}}]})


def test_sends_the_course_prompt_and_parses_answers():
    seen = []
    answers = iter(["1,299.99", "45 dollars", "no idea"])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _reply(next(answers))

    items = make_items(3)
    est = FrontierEstimator("https://api.example/v1", "gpt-test", "sk-test", transport=httpx.MockTransport(handler))
    assert est.predict(items) == [1299.99, 45.0, 0.0]
    assert est.unparsed == 1
    request = seen[0]
    assert str(request.url) == "https://api.example/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = json.loads(request.content)
    assert body["model"] == "gpt-test" and body["temperature"] == 0 and body["max_tokens"] <= 8
    assert body["messages"] == messages_for(items[0])
    assert body["messages"][-1] == {"role": "assistant", "content": "Price is $"}
    assert body["messages"][1]["content"] == f"How much does this cost?\n\n{items[0].text}"
    est.close()


def test_retries_rate_limits_then_fails_clearly(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)  # tenacity sleeps through time.sleep
    statuses = iter([429, 503, 200])

    def flaky(request):
        status = next(statuses)
        return _reply("12.00") if status == 200 else httpx.Response(status, text="slow down")

    est = FrontierEstimator("https://api.example/v1", "m", None, transport=httpx.MockTransport(flaky))
    assert est.predict(make_items(1)) == [12.0]

    refused = FrontierEstimator("https://api.example/v1", "m", "bad",
                                transport=httpx.MockTransport(lambda r: httpx.Response(401, text="invalid key")))
    with pytest.raises(FrontierError, match="401: invalid key"):
        refused.predict(make_items(1))


def test_a_rate_limit_is_asked_again_after_the_wait_it_names(monkeypatch):
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"), _reply("3.50")])
    est = FrontierEstimator("https://api.example/v1", "m", None, transport=httpx.MockTransport(lambda r: next(answers)))
    assert est.predict(make_items(1)) == [3.5]
    assert slept == [7.0]


def test_settings_choose_url_model_and_key():
    settings = Settings(frontier_base_url="https://llm.example/v1", frontier_model="m1", frontier_api_key="k1")
    est = create("frontier", EstimatorOptions(settings=settings))
    assert str(est.client.base_url) == "https://llm.example/v1/"
    assert est.model == "m1" and est.client.headers["authorization"] == "Bearer k1"
    est.close()


def test_an_unreachable_api_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)  # tenacity sleeps through time.sleep

    def down(request):
        raise httpx.ConnectError("connection refused", request=request)

    est = FrontierEstimator("https://api.example/v1", "m", None, retries=1, transport=httpx.MockTransport(down))
    with pytest.raises(FrontierError, match="cannot reach https://api.example/v1/"):
        est.predict(make_items(1))


def test_evaluate_reports_an_unreachable_api_without_a_traceback(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import cli
    from app.model.item_files import write_items

    monkeypatch.setattr(time, "sleep", lambda s: None)  # tenacity sleeps through time.sleep
    monkeypatch.setenv("PRICER_FRONTIER_BASE_URL", "http://127.0.0.1:9/v1")  # the discard port: refused
    data = tmp_path / "d.jsonl"
    write_items(data, make_items(2))
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(data), "--estimator", "frontier"])
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9/v1/" in result.output


def test_with_comparables_it_asks_the_course_rag_prompt_without_the_item_itself():
    """The course's week-8 RAG agent: the k most similar indexed items and their prices come first;
    the item's own indexed copy is never one of them."""
    from app.index.index import Index
    from app.model.items import Item
    from tests.index.fake_embedder import FakeEmbedder

    def item(title, price, body):
        return Item(title=title, price=price, text=f"{title}\n{body}")

    lamp = item("Brass desk lamp", 41.0, "adjustable arm, warm bulb")
    index = Index.from_items(
        [lamp, item("Brass floor lamp", 88.0, "adjustable arm, warm bulb"), item("Garden hose reel", 60.0, "hose, wall mount")],
        FakeEmbedder(),
    )
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return _reply("52")

    est = FrontierEstimator("https://api.example/v1", "gpt-test", None, transport=httpx.MockTransport(handler),
                            comparables=1, index=index)
    assert est.predict([lamp]) == [52.0]
    user = seen[0]["messages"][1]["content"]
    assert user.startswith("To provide some context, here are some other items that might be similar")
    assert "Brass floor lamp\nPrice is $88.00" in user and "$41" not in user and "hose" not in user
    assert user.endswith("And now the question for you:\n\nHow much does this cost?\n\n" + lamp.text)
    with pytest.raises(FrontierError, match="no index"):
        FrontierEstimator("https://api.example/v1", "gpt-test", None, comparables=3)
