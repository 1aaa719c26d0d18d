"""Raw vLLM offline generation, in a process of its own: the yardstick for the LLM path.

`python -m app.bench.raw_offline JOB.json` reads the engine arguments, environment, prompt token
ids, sampling and LoRA adapter that `run` wrote (all from the serving spec), starts
vLLM's offline `LLM`, warms it on a few prompts, generates for all of them at once and prints one
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


def run(spec, model_dir: Path, prompts: list[list[int]], adapter: Path | None) -> dict:
    """`main` on these prompt token ids in a child process; its result."""
    import subprocess
    import tempfile

    from app.runtime.processes import child_server

    job = {"engine_kwargs": spec.engine_kwargs(model_dir), "env": spec.engine_env(), "sampling": spec.sampling_kwargs(),
           "prompts": prompts, "lora": [adapter.name, str(adapter)] if adapter else None}
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

    llm = LLM(**job["engine_kwargs"])
    start_s = time.perf_counter() - started
    params = SamplingParams(**job["sampling"])
    lora = LoRARequest(job["lora"][0], 1, job["lora"][1]) if job.get("lora") else None
    prompts = [{"prompt_token_ids": ids} for ids in job["prompts"]]
    llm.generate(prompts[:4], params, lora_request=lora, use_tqdm=False)  # warm-up, not counted
    begin = time.perf_counter()
    outputs = llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
    seconds = time.perf_counter() - begin
    generated = sum(len(o.outputs[0].token_ids) for o in outputs)
    print(RESULT + json.dumps({
        "start_s": round(start_s, 2), "seconds": round(seconds, 3), "requests": len(prompts),
        "requests_per_s": round(len(prompts) / seconds, 4),
        "prompt_tokens_mean": round(sum(len(p) for p in job["prompts"]) / len(prompts), 1),
        "generated_tokens_mean": round(generated / len(prompts), 2),
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
