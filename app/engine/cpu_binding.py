"""Which CPUs vLLM's CPU engine computes on, and so which it leaves to the rest of the process.

vLLM binds its engine's OpenMP threads itself (vllm/utils/ompmultiprocessing.py, VLLM_CPU_OMP_THREADS_BIND):
`auto` (the default, which the service keeps: docs/inference.md measured it) takes the first NUMA node
of the CPUs the process may use, one logical CPU per physical core (the last sibling on x86), and
keeps the last of those (VLLM_CPU_NUM_OF_RESERVED_CPU, default one per rank) for the scheduler and
the frontend; with no more cores than that it reserves none. An explicit list ("0-2", "0-1|2-3") is
used as given; `nobind` binds nothing. On the 2-core test machine vLLM computes on CPU 0 and leaves
CPU 1.

`cpus_vllm_leaves()` is what the service's embedding worker runs on (app.index.minilm): the allowed
CPUs whose physical core holds none of vLLM's compute threads. None where there are none (a
single-core machine) or vLLM binds nothing: the worker is then left where it is. One engine rank
(tensor_parallel_size 1) is assumed, as the service runs on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.runtime.threads import allowed_cpus, parse_cpu_list

SYS_CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class Cpu:
    id: int
    core: tuple[int, int]  # (package, core id): the physical core
    node: int  # NUMA node


@dataclass(frozen=True)
class FreeCpus:
    cpus: frozenset[int]
    threads: int  # physical cores among them: the torch threads that fit
    reason: str


def topology(ids: set[int], sys_cpu: Path = SYS_CPU) -> list[Cpu]:
    """The CPUs `ids` with their physical core and NUMA node; each its own core on node 0 where
    sysfs does not say."""
    cpus = []
    for i in sorted(ids):
        folder = sys_cpu / f"cpu{i}"
        try:
            core = (int((folder / "topology/physical_package_id").read_text()),
                    int((folder / "topology/core_id").read_text()))
        except (OSError, ValueError):
            core = (-1, i)
        nodes = sorted(int(p.name[4:]) for p in folder.glob("node[0-9]*")) if folder.is_dir() else []
        cpus.append(Cpu(i, core, nodes[0] if nodes else 0))
    return cpus


def vllm_compute_cpus(cpus: list[Cpu], bind: str = "auto", reserved: int | None = None) -> set[int] | None:
    """The CPUs vLLM's engine (one rank) binds its compute threads to; None: it binds none."""
    bind = bind.strip() or "auto"
    if bind == "nobind" or not cpus:
        return None
    if bind != "auto":
        return parse_cpu_list(bind)
    node = min(c.node for c in cpus)
    last_sibling: dict[tuple[int, int], Cpu] = {}
    for cpu in sorted(cpus, key=lambda c: c.id):
        if cpu.node == node:
            last_sibling[cpu.core] = cpu
    selected = sorted(c.id for c in last_sibling.values())
    keep = 1 if reserved is None else max(0, reserved)
    if len(selected) <= keep or keep == 0:
        return set(selected)
    return set(selected[:-keep])


def free_of(cpus: list[Cpu], compute: set[int] | None, reason: str) -> FreeCpus | None:
    """The CPUs whose physical core runs none of `compute`; None when there are none."""
    if compute is None:
        return None
    busy = {c.core for c in cpus if c.id in compute}
    free = [c for c in cpus if c.core not in busy]
    if not free:
        return None
    return FreeCpus(frozenset(c.id for c in free), len({c.core for c in free}), reason)


def cpus_vllm_leaves(environ=os.environ) -> FreeCpus | None:
    """The allowed CPUs on physical cores vLLM's CPU engine does not compute on (module docstring)."""
    bind = environ.get("VLLM_CPU_OMP_THREADS_BIND", "auto")
    reserved_text = environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU")
    reserved = int(reserved_text) if reserved_text and reserved_text.strip().isdigit() else None
    cpus = topology(allowed_cpus())
    return free_of(cpus, vllm_compute_cpus(cpus, bind, reserved), f"VLLM_CPU_OMP_THREADS_BIND={bind}")


@dataclass(frozen=True)
class Placement:
    cpus: frozenset[int]
    threads: int  # torch threads: one per physical core among cpus
    why: str


def chosen_cpus(choice: str, settings, what: str) -> Placement | None:
    """Where a setting such as PRICER_EMBED_CORES or PRICER_MEMBER_CORES puts a thread: `auto`, the
    cores vLLM's CPU engine leaves (only when the engine is vLLM on the CPU); a CPU list; `none`.
    None: leave the thread where it is (also when the choice is every allowed CPU)."""
    choice = choice.strip()
    if choice == "none":
        return None
    if choice == "auto":
        from app.model.hardware import resolve_device

        if settings.engine != "vllm" or resolve_device(settings) != "cpu":
            return None
        free = cpus_vllm_leaves()
        if free is None:
            return None
        placement = Placement(free.cpus, free.threads, f"the cores vLLM leaves ({free.reason})")
    else:
        cpus = parse_cpu_list(choice) & allowed_cpus()
        placement = Placement(frozenset(cpus), len({cpu.core for cpu in topology(cpus)}), f"{what}={choice}")
    return None if not placement.cpus or placement.cpus == allowed_cpus() else placement


def member_placement(name: str, settings) -> Placement | None:
    """Where an ensemble member's calls compute: PRICER_MEMBER_CORES for the members PRICER_PLACED_MEMBERS
    names (the knowledge member by default), None (the OS decides) for the others."""
    if name not in settings.placed_members:
        return None
    return chosen_cpus(settings.member_cores, settings, "PRICER_MEMBER_CORES")
