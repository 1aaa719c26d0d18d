"""vLLM's own OpenAI server as the yardstick for `pricer bench --compare-vllm`.

Same model, same adapter (--enable-lora --lora-modules), same dtype, context length, batch size
and logprobs mode as VllmEngine; each request is a /v1/completions call with the same prompt (the
service's item text, cut to the same token budget, through app.items.build_prompt) and the same
sampling settings (greedy, same max_tokens, stop, allowed tokens and top-k logprobs).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from app.bench.readiness import ServerExitedError, wait_until_ready
from app.config import Settings
from app.decoding import ANSWER_MAX_TOKENS, ANSWER_STOP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(settings: Settings, model_dir: Path, port: int, adapter: tuple[str, Path] | None) -> list[str]:
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", model_dir.name,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", settings.dtype,
        "--max-model-len", str(settings.max_model_len),
        "--max-num-seqs", str(settings.max_num_seqs),
        "--max-logprobs", str(max(20, settings.top_logprobs)),
        "--logprobs-mode", "processed_logprobs",
        "--enable-lora", "--max-lora-rank", str(settings.max_lora_rank), "--max-loras", str(settings.max_loras),
        "--seed", "0",
        "--disable-uvicorn-access-log",
    ]
    if adapter is not None:
        command += ["--lora-modules", f"{adapter[0]}={adapter[1]}"]
    return command


@contextmanager
def raw_vllm_server(settings: Settings, model_dir: Path, adapter: tuple[str, Path] | None, log_path: Path, start_timeout_s: float = 600):
    """Start the server on a free port, yield its base URL once /health answers, stop it after."""

    port = free_port()
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, round(settings.kv_cache_gib))))
    env.setdefault("HF_HUB_OFFLINE", "1")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            server_command(settings, model_dir, port, adapter), stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # its engine core is its child: stop the whole group
        )
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_until_ready(f"{url}/health", start_timeout_s, process)
            except ServerExitedError:
                raise RuntimeError(f"vLLM's server exited with {process.returncode}; see {log_path}") from None
            except TimeoutError:
                raise TimeoutError(f"vLLM's server did not start in {start_timeout_s:.0f} s; see {log_path}") from None
            yield url
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def completion_bodies(prompts: Sequence[str], model: str, settings: Settings, allowed_token_ids: list[int]) -> list[dict]:
    """The same sampling settings as VllmEngine's SamplingParams."""
    return [
        {
            "model": model,
            "prompt": prompt,
            "max_tokens": ANSWER_MAX_TOKENS,
            "temperature": 0.0,
            "logprobs": settings.top_logprobs,
            "stop": [ANSWER_STOP],
            "include_stop_str_in_output": True,
            "allowed_token_ids": allowed_token_ids,
        }
        for prompt in prompts
    ]
