"""The frontier member (optional at run time): a bundle fitted with a frontier model's answers is
served with it where an OpenAI-compatible endpoint and key are configured (here a local fake
endpoint, a real HTTP server on loopback), and without it, saying why, where none is."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.api.ensemble_fixtures import write_test_bundle

ITEM = {"title": "Acme premium heavy duty drill model 7", "description": "Cordless, two batteries. Brand Acme."}


@pytest.fixture
def fake_endpoint():
    """A local OpenAI-compatible /v1/chat/completions that answers 77 and records the bodies."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            seen.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body})
            reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": "77"}}]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1", seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def bundle(store):
    """bow-ridge and constant (saved), frontier (fitted from its answers, asked without comparables)."""
    row = {"kind": "external", "estimator": "frontier", "endpoint": {"model": "gpt-test", "comparables": 0}}
    return write_test_bundle(store, external={"frontier": row})


async def test_with_an_endpoint_the_frontier_member_answers(make_service, bundle, fake_endpoint):
    url, seen = fake_endpoint
    async with make_service(frontier_base_url=url, frontier_api_key="sk-local") as (client, app):
        r = await client.post("/v1/estimate", json=ITEM)
        assert r.status_code == 200, r.text
        assert r.json()["components"]["frontier"] == 77.0
        listing = (await client.get("/v1/ensemble")).json()
        assert "frontier" in listing["loaded"] and listing["missing"] == {}
    asked = [s for s in seen if "Acme premium heavy duty drill" in s["body"]["messages"][1]["content"]]
    assert asked and asked[0]["path"] == "/v1/chat/completions" and asked[0]["auth"] == "Bearer sk-local"
    assert asked[0]["body"]["model"] == "gpt-test"  # the model the member was fitted with


async def test_without_an_endpoint_the_rest_answer_and_say_why(make_service, bundle):
    async with make_service() as (client, app):
        r = await client.post("/v1/estimate", json=ITEM)
        assert r.status_code == 200, r.text
        assert r.json()["components"]["frontier"] is None and r.json()["components"]["bow-ridge"] > 0
        listing = (await client.get("/v1/ensemble")).json()
        assert "PRICER_FRONTIER_API_KEY" in listing["missing"]["frontier"]
