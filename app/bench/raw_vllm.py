"""vLLM's own OpenAI server as the yardstick for `pricer bench --compare-vllm`.

Same model and adapter (--lora-modules), and the engine arguments VllmEngine uses, taken from the
same serving spec (app.model.spec.ServingSpec.server_flags: dtype, context length, batch size, LoRA limits,
logprobs mode, seed); each request is a /v1/completions call with the spec's prompt for the
service's item text and the spec's sampling (ServingSpec.completion_body). Nothing is mirrored by hand.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from app.bench.readiness import ServerExitedError, wait_until_ready
from app.runtime.processes import child_server
from app.model.spec import ServingSpec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(spec: ServingSpec, model_dir: Path, port: int, adapter: tuple[str, Path] | None) -> list[str]:
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *spec.server_flags(model_dir),
               "--host", "127.0.0.1", "--port", str(port), "--disable-uvicorn-access-log"]
    if adapter is not None:
        command += ["--lora-modules", f"{adapter[0]}={adapter[1]}"]
    return command


@contextmanager
def raw_vllm_server(spec: ServingSpec, model_dir: Path, adapter: tuple[str, Path] | None, log_path: Path, start_timeout_s: float = 600):
    """Start the server on a free port, yield its base URL once /health answers, stop it after (also
    when this command is stopped by SIGTERM or SIGINT, or dies: app.runtime.processes.child_server)."""

    port = free_port()
    env = dict(os.environ)
    spec.apply_env(env)
    env.setdefault("HF_HUB_OFFLINE", "1")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = server_command(spec, model_dir, port, adapter)
    with log_path.open("w") as log, child_server(command, stdout=log, stderr=subprocess.STDOUT, env=env) as process:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(f"{url}/health", start_timeout_s, process)
        except ServerExitedError:
            raise RuntimeError(f"vLLM's server exited with {process.returncode}; see {log_path}") from None
        except TimeoutError:
            raise TimeoutError(f"vLLM's server did not start in {start_timeout_s:.0f} s; see {log_path}") from None
        yield url
