"""Raw vLLM offline generation, in a process of its own: the yardstick for the LLM path.

`python -m app.bench.raw_offline JOB.json` reads the engine arguments, environment, prompt token
ids, sampling and LoRA adapter that `pricer bench-cpu` wrote (all from the serving spec), starts
vLLM's offline `LLM`, warms it on a few prompts, generates for all of them at once and prints one
line (RESULT, then JSON): start seconds, generation seconds, requests/s, tokens. A process of its own so that each
run gets the environment it names (thread binding is read when vLLM spawns its engine core) and
leaves nothing running (app.runtime.processes stops it with its parent).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

RESULT = "raw-offline-result: "  # vLLM logs to stdout too: the result line is the one with this prefix


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
