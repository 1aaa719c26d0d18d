"""Ray Data: the pending parts -> map_batches(PricingActor) -> each part's files (the actor writes
them itself, temp then rename, under deterministic names: what makes a rerun exactly-once).

Local by default (Ray started in-process with this machine's CPUs); `--ray-address` joins a
cluster. Workers default to one per GPU (one GPU each) or, without GPUs, one per node with that
node's CPUs: vLLM's CPU engine spreads its own threads, so two engines on one node only compete.
Inside an actor the engine runs with vLLM's own multiprocessing executor (its Ray executor refuses
the CPU). A worker that dies (its node lost, the engine dead) is restarted by Ray and its part
retried; a part already written is not priced again.
"""

from __future__ import annotations

import json
import logging
import os

log = logging.getLogger(__name__)


def connect(address: str | None, cpus: float | None):
    import ray

    if ray.is_initialized():
        return ray
    env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith(("PRICER_", "VLLM_", "HF_", "TRANSFORMERS_"))}}
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=True)
    else:
        ray.init(num_cpus=int(cpus) if cpus else None, runtime_env=env, include_dashboard=False)
    return ray


def resources(ray) -> tuple[int, float, float]:
    """(nodes, CPUs on the smallest node, GPUs in all) of the cluster."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = min((n["Resources"].get("CPU", 0.0) for n in nodes), default=1.0)
    gpus = sum(n["Resources"].get("GPU", 0.0) for n in nodes)
    return max(1, len(nodes)), max(1.0, cpus), gpus


def plan(options, ray) -> tuple[int, float, float]:
    """(workers, CPUs per worker, GPUs per worker): the options where given, else from the cluster."""
    nodes, node_cpus, gpus = resources(ray)
    gpus_each = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    cpus_each = options.cpus_per_worker if options.cpus_per_worker is not None else (1.0 if gpus_each else node_cpus)
    workers = options.workers or (int(gpus // gpus_each) if gpus_each else nodes)
    return max(1, workers), cpus_each, gpus_each


def run_parts(options, settings, pending: list[int], id_type: str, expect: dict, worker_settings: dict) -> list[dict]:
    from app.batch.actor import PricingActor

    ray = connect(options.ray_address, options.cpus_per_worker if not options.ray_address else None)
    import ray.data

    workers, cpus_each, gpus_each = plan(options, ray)
    log.info("pricing %d parts on %d workers (%g CPUs, %g GPUs each)", len(pending), workers, cpus_each, gpus_each)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = True
    # Ray Data's task retries on application errors stay off: a bad row is the errors file's, and a
    # deterministic failure (another job's versions) must stop the job, not loop.
    context.actor_task_retry_on_errors = False
    # Hand out parts only once every actor has loaded its model: else the first one ready takes them
    # all (a second node's actor, still loading, got none in the two-node test).
    context.wait_for_min_actors_s = settings.batch_actor_start_s
    parts = ray.data.from_items([{"part": p} for p in pending], override_num_blocks=len(pending))
    priced = parts.map_batches(
        PricingActor,
        fn_constructor_kwargs=dict(settings=worker_settings, out=str(options.out.resolve()), fmt=options.format,
                                   comparables=options.comparables, id_type=id_type,
                                   batch_size=options.batch_size or settings.batch_size, expect=expect),
        batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(workers, len(pending))),
        num_cpus=cpus_each, num_gpus=gpus_each or None,
        max_restarts=-1, max_task_retries=-1, scheduling_strategy="SPREAD",  # actors across the nodes
    )
    return [json.loads(row["summary"]) for row in priced.take_all()]
