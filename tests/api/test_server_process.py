"""Behaviour that lives in the server process, below ASGI (uvicorn, sockets, signals), tested on a real
`pricer serve` process with the fake engine (PRICER_ENGINE=fake: no model, so these run in seconds).
The same behaviours on the real vLLM engine are in tests/e2e/test_service.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import httpx
import pytest

from tests.api.live_server import fake_base, serve_process

KEY = {"Authorization": "Bearer process-key"}
ITEM = {"title": "Acme kettle", "description": "1.7 litres, steel."}


def _env(tmp_path, **extra) -> dict[str, str]:
    values = {
        "PRICER_ENGINE": "fake",
        "PRICER_MODELS_DIR": str(tmp_path),
        "PRICER_BASE_MODEL": str(fake_base(tmp_path)),
        "PRICER_API_KEY": "process-key",
        "PRICER_MAX_INFLIGHT": "4",
    }
    values.update(extra)
    return values


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("serve-fake")
    with serve_process(tmp_path, _env(tmp_path, PRICER_BODY_TIMEOUT_S="3")) as (url, process, log_path):
        yield url, process, log_path


def _raw(url: str, data: bytes, timeout: float = 10) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def _stalled(url: str, headers: bytes = b"") -> socket.socket:
    """Headers and half a body, then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        b"POST /v1/estimate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n"
        + headers + b"\r\n" + b'{"title": "sta'
    )
    return sock


@pytest.mark.timeout(120)
def test_stalled_unauthenticated_connections_do_not_block_keyed_clients(server):
    url, _, _ = server
    stalled = [_stalled(url) for _ in range(2 * 4)]  # 2 x PRICER_MAX_INFLIGHT
    try:
        time.sleep(0.5)
        for _ in range(3):
            response = httpx.post(f"{url}/v1/estimate", json=ITEM, headers=KEY, timeout=10)
            assert response.status_code == 200, response.text
    finally:
        for sock in stalled:
            sock.close()


@pytest.mark.timeout(120)
def test_a_keyed_client_that_stalls_its_body_gets_408_and_frees_its_slot(server):
    url, _, _ = server
    sock = _stalled(url, b"Authorization: Bearer process-key\r\n")
    try:
        sock.settimeout(15)
        answer = sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1])
        while len(body) < length:  # the body may come in a second packet
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        answer = head + b"\r\n\r\n" + body
        assert b" 408 " in answer.split(b"\r\n")[0] and b"application/problem+json" in answer
        assert b"PRICER_BODY_TIMEOUT_S" in answer
    finally:
        sock.close()
    assert httpx.post(f"{url}/v1/estimate", json=ITEM, headers=KEY, timeout=10).status_code == 200


def test_a_64_kb_header_is_431_problem_json(server):
    url, _, _ = server
    response = httpx.get(f"{url}/healthz", headers={"X-Big": "a" * 65536}, timeout=10)
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert "PRICER_MAX_HEADER_BYTES" in response.json()["detail"]
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def test_a_large_body_in_the_same_packet_as_small_headers_is_not_a_header_problem(server):
    # A batch with details is easily over 32 KB; sent in one write, it arrives with its headers, and
    # those bytes once counted as header bytes (431 for a valid request).
    url, _, _ = server
    items = [{**ITEM, "description": "1.7 litres, steel. " + "x" * 1500} for _ in range(40)]
    body = json.dumps({"items": items}).encode()
    assert len(body) > 32_768
    answer = _raw(url, b"POST /v1/estimate/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer process-key\r\nConnection: close\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert answer.split(b"\r\n")[0] == b"HTTP/1.1 200 OK", answer[:300]


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n",
        b"POST /v1/estimate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    ],
)
def test_the_parser_s_own_errors_are_problem_json(server, raw):
    url, _, _ = server
    answer = _raw(url, raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"content-type: application/problem+json" in head.lower()
    assert b'"status": 400' in body


def test_head_on_the_probes(server):
    url, _, _ = server
    assert httpx.head(f"{url}/healthz", timeout=5).status_code == 200
    assert httpx.head(f"{url}/readyz", timeout=5).status_code == 200


def test_docs_work_offline(server):
    url, _, _ = server
    page = httpx.get(f"{url}/docs", timeout=5).text
    assert "cdn." not in page and "/docs-assets/swagger-ui-bundle.js" in page
    js = httpx.get(f"{url}/docs-assets/swagger-ui-bundle.js", timeout=5)
    assert js.status_code == 200 and len(js.content) > 100_000


@pytest.mark.timeout(120)
def test_a_second_sigterm_exits_at_once(tmp_path):
    env = _env(tmp_path, PRICER_FAKE_LATENCY_S="60", PRICER_SHUTDOWN_TIMEOUT_S="60")
    with serve_process(tmp_path, env) as (url, process, _):
        sock = socket.create_connection(url.removeprefix("http://").split(":"))
        body = b'{"title": "slow"}'
        sock.sendall(
            b"POST /v1/estimate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer process-key\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        time.sleep(1)  # the request is in flight: the first signal drains it (up to 60 s)
        os.kill(process.pid, signal.SIGTERM)
        time.sleep(1)
        assert process.poll() is None  # draining
        started = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        assert time.monotonic() - started < 5
        sock.close()
