"""vLLM's own OpenAI server as the yardstick for `pricer bench --compare-vllm`.

Same model and adapter, and the engine arguments the service's engine uses, taken from the same
serving spec (app.model.spec.ServingSpec.server_flags: dtype, context length, batch size, LoRA limits,
logprobs mode, seed), in the service's adapter mode (app.bench.engine_mode): `lora`, the base with
the adapter as --lora-modules (VllmEngine's arguments); `merged`, the adapter's merged folder (the
store's cached merge, the one the service's merged engine loads) as the model with the base's
tokenizer and no LoRA flags (MergedVllmEngine's arguments: vLLM compiles as it does). Each request is
a /v1/completions call with the spec's prompt for the service's item text and the spec's sampling
(ServingSpec.completion_body). Nothing is mirrored by hand.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from app.bench.engine_mode import engine_kwargs, spec_in_mode
from app.bench.readiness import ServerExitedError, wait_until_ready
from app.runtime.processes import child_server
from app.model.spec import ServingSpec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def served_folder(model_dir: Path, mode: str = "lora", weights: Path | None = None) -> Path:
    """The folder vLLM's server loads as its model: the merged weights in merged mode, else the base."""
    return Path(weights) if mode == "merged" and weights else Path(model_dir)


def served_model(spec: ServingSpec, model_dir: Path, adapter: tuple[str, Path] | None, mode: str = "lora",
                 weights: Path | None = None) -> str:
    """The `model` a request names: the LoRA module's name in lora mode, else the served model name
    the engine arguments give the served folder."""
    if adapter is not None and mode == "lora":
        return adapter[0]
    return engine_kwargs(spec, served_folder(model_dir, mode, weights), mode)["served_model_name"]


def server_command(spec: ServingSpec, model_dir: Path, port: int, adapter: tuple[str, Path] | None,
                   mode: str = "lora", weights: Path | None = None) -> list[str]:
    """`adapter`: (name, folder) served through LoRA in lora mode; `weights`: its merged folder in merged mode."""
    served = served_folder(model_dir, mode, weights)
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *spec_in_mode(spec, mode).server_flags(served),
               "--host", "127.0.0.1", "--port", str(port), "--disable-uvicorn-access-log"]
    if served != Path(model_dir):  # a merged folder holds no tokenizer: the service's is the base's
        command += ["--tokenizer", str(model_dir)]
    if adapter is not None and mode == "lora":
        command += ["--lora-modules", f"{adapter[0]}={adapter[1]}"]
    return command


@contextmanager
def raw_vllm_server(spec: ServingSpec, model_dir: Path, adapter: tuple[str, Path] | None, log_path: Path, start_timeout_s: float = 600,
                    mode: str = "lora", weights: Path | None = None):
    """Start the server on a free port, yield its base URL once /health answers, stop it after (also
    when this command is stopped by SIGTERM or SIGINT, or dies: app.runtime.processes.child_server)."""

    port = free_port()
    env = dict(os.environ)
    spec.apply_env(env)
    env.setdefault("HF_HUB_OFFLINE", "1")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = server_command(spec, model_dir, port, adapter, mode, weights)
    with log_path.open("w") as log, child_server(command, stdout=log, stderr=subprocess.STDOUT, env=env) as process:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(f"{url}/health", start_timeout_s, process)
        except ServerExitedError:
            raise RuntimeError(f"vLLM's server exited with {process.returncode}; see {log_path}") from None
        except TimeoutError:
            raise TimeoutError(f"vLLM's server did not start in {start_timeout_s:.0f} s; see {log_path}") from None
        yield url
