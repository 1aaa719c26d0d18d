"""app/engine/cpu_binding.py: the CPUs vLLM's CPU engine computes on (its `auto` rule and explicit
lists), and those it leaves to the embedding worker, on made-up topologies."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.cpu_binding import Cpu, cpus_vllm_leaves, free_of, topology, vllm_compute_cpus


def flat(n: int, node: int = 0) -> list[Cpu]:
    return [Cpu(i, (0, i), node) for i in range(n)]


def smt(cores: int) -> list[Cpu]:
    """Linux numbering of 2-way SMT: CPU i and i + cores share physical core i."""
    return [Cpu(i, (0, i % cores), 0) for i in range(2 * cores)]


def test_auto_keeps_the_last_core_for_the_scheduler():
    cpus = flat(2)
    assert vllm_compute_cpus(cpus) == {0}
    free = free_of(cpus, vllm_compute_cpus(cpus), "auto")
    assert free.cpus == {1} and free.threads == 1
    assert vllm_compute_cpus(flat(8)) == set(range(7))


def test_one_core_leaves_nothing_free():
    cpus = flat(1)
    assert vllm_compute_cpus(cpus) == {0}
    assert free_of(cpus, {0}, "auto") is None


def test_auto_takes_one_sibling_per_core_and_frees_the_whole_reserved_core():
    cpus = smt(4)  # cores 0-3: CPUs (0, 4), (1, 5), (2, 6), (3, 7)
    assert vllm_compute_cpus(cpus) == {4, 5, 6}
    free = free_of(cpus, {4, 5, 6}, "auto")
    assert free.cpus == {3, 7} and free.threads == 1  # the siblings of busy cores are not free


def test_auto_stays_on_the_first_numa_node_and_honours_the_reserved_count():
    cpus = flat(2, node=0) + [Cpu(i, (1, i), 1) for i in (2, 3)]
    assert vllm_compute_cpus(cpus) == {0}
    assert free_of(cpus, {0}, "auto").cpus == {1, 2, 3}
    assert vllm_compute_cpus(flat(4), reserved=2) == {0, 1}
    assert vllm_compute_cpus(flat(4), reserved=0) == {0, 1, 2, 3}


@pytest.mark.parametrize(("bind", "compute"), [("0-1", {0, 1}), ("0,2|3", {0, 2, 3}), ("nobind", None)])
def test_explicit_lists_and_nobind(bind, compute):
    assert vllm_compute_cpus(flat(4), bind) == compute


def test_topology_reads_sysfs_and_falls_back(tmp_path: Path):
    for i, (package, core, node) in enumerate([(0, 0, 0), (0, 1, 0), (0, 0, 0)]):
        folder = tmp_path / f"cpu{i}"
        (folder / "topology").mkdir(parents=True)
        (folder / "topology/physical_package_id").write_text(f"{package}\n")
        (folder / "topology/core_id").write_text(f"{core}\n")
        (folder / f"node{node}").mkdir()
    assert topology({0, 1, 2, 5}, tmp_path) == [Cpu(0, (0, 0), 0), Cpu(1, (0, 1), 0), Cpu(2, (0, 0), 0),
                                                 Cpu(5, (-1, 5), 0)]


def test_this_machine(monkeypatch):
    import os

    allowed = os.sched_getaffinity(0)
    free = cpus_vllm_leaves({})
    assert free is None if len(allowed) == 1 else free.cpus < allowed
    assert cpus_vllm_leaves({"VLLM_CPU_OMP_THREADS_BIND": "nobind"}) is None


def test_chosen_cpus_for_a_setting(monkeypatch):
    """PRICER_EMBED_CORES / PRICER_MEMBER_CORES: none, a list (all allowed CPUs: left alone), auto
    (the cores vLLM leaves, only for vLLM on the CPU)."""
    import os

    from app.config import Settings
    from app.engine.cpu_binding import chosen_cpus

    allowed = os.sched_getaffinity(0)
    settings = Settings(engine="vllm", device="cpu")
    assert chosen_cpus("none", settings, "X") is None
    assert chosen_cpus(",".join(map(str, sorted(allowed))), settings, "X") is None
    auto = chosen_cpus("auto", settings, "X")
    assert auto is None if len(allowed) == 1 else (auto.cpus < allowed and auto.threads >= 1)
    assert chosen_cpus("auto", Settings(engine="fake"), "X") is None
    if len(allowed) > 1:
        one = chosen_cpus(str(min(allowed)), settings, "PRICER_MEMBER_CORES")
        assert one.cpus == {min(allowed)} and one.threads == 1 and "PRICER_MEMBER_CORES" in one.why


def test_member_placement_places_only_the_named_members():
    import os

    from app.config import Settings
    from app.engine.cpu_binding import member_placement

    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        return
    settings = Settings(engine="vllm", device="cpu", member_cores=str(min(allowed)))
    assert member_placement("knowledge", settings).cpus == {min(allowed)}  # the default list names knowledge
    assert member_placement("llm-head", settings) is None
    assert member_placement("llm-head", settings.model_copy(update={"placed_members": ["llm-head"]})) is not None
    assert member_placement("knowledge", Settings(engine="vllm", device="cpu")) is None  # PRICER_MEMBER_CORES=none
