"""The one follower every versioned kind uses, on a toy kind (no engine, no files): compare-and-set
publishing (a lost race to another part is retried over it, one lost to this part is followed, an
admin's stale generation activates nothing), the lag and its metric, and when a refused choice is
tried again (a new choice, changed files, a transient refusal after RETRY_AFTER_S; never every poll)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from app.versions import desired, follower
from app.versions.desired import GenerationConflict, StateError
from app.versions.follower import Follower, Refused


class Toy:
    """A kind following the desired state's ensemble part; `refusals` says which targets it refuses."""

    part, nothing = "ensemble", "nothing"

    def __init__(self):
        self.active = None
        self.refusals: dict[tuple, Refused] = {}
        self.prints: dict[tuple, object] = {}
        self.tries: list[tuple] = []

    def active_key(self):
        return self.active

    async def serve(self, target):
        self.tries.append(target)
        if target in self.refusals:
            raise self.refusals[target]
        self.active = target

    def fingerprint(self, target):
        return self.prints.get(target, ())


def make(tmp_path, persist=True) -> tuple[Follower, Toy]:
    kind = Toy()
    return Follower(kind, asyncio.Lock(), tmp_path, persist, replica_id="me"), kind


def lag_metric(kind: str, reason: str) -> float | None:
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "pricer_desired_state_lag" and sample.labels["kind"] == kind and sample.labels["reason"] == reason:
                return sample.value
    return None


async def test_publish_writes_the_next_generation_and_converges(tmp_path):
    f, kind = make(tmp_path)
    kind.active = ("e", "1")
    state = await f.publish(("e", "1"), expect=0)
    assert (state.generation, state.ensemble, state.updated_by) == (1, ("e", "1"), "me")
    assert f.status() == {"generation": 1, "converged": True, "lag": None}
    assert not state.adapter_chosen  # the other part is left as it was


async def test_a_race_lost_to_another_part_is_retried_and_one_lost_to_this_part_is_followed(tmp_path):
    f, kind = make(tmp_path)
    desired.update(tmp_path, adapter=("pa", "v1"))  # another replica chose only an adapter
    state = await f.publish(("e", "1"), expect=0)
    assert (state.generation, state.adapter, state.ensemble) == (2, ("pa", "v1"), ("e", "1"))
    desired.update(tmp_path, ensemble=("e", "2"), by="other")  # another replica chose a bundle first
    found = await f.publish(("e", "3"), expect=2)
    assert found.ensemble == ("e", "2") and kind.active == ("e", "2") and f.generation_seen == 3
    assert desired.read(tmp_path).ensemble == ("e", "2")


async def test_an_admin_choice_over_a_stale_generation_activates_nothing(tmp_path):
    f, kind = make(tmp_path)
    desired.update(tmp_path, ensemble=("e", "1"))
    activated = []

    async def activate():
        activated.append(True)

    with pytest.raises(GenerationConflict):
        await f.choose_locked(("e", "2"), 0, activate)
    assert activated == [] and desired.read(tmp_path).ensemble == ("e", "1")
    state = await f.choose_locked(("e", "2"), 1, activate)
    assert activated == [True] and state.generation == 2


async def test_an_unwritable_store_is_raised_only_to_the_admin(tmp_path):
    f, kind = make(tmp_path)
    desired.state_path(tmp_path).write_text("{not json")
    assert await f.publish(("e", "1"), expect=None) is None  # logged; this replica keeps serving
    with pytest.raises(StateError):
        await f.publish(("e", "1"), expect=None, strict=True)


async def test_without_persist_nothing_is_written(tmp_path):
    f, _ = make(tmp_path, persist=False)
    assert await f.publish(("e", "1"), expect=0) is None
    assert not desired.state_path(tmp_path).exists()


async def test_a_refused_choice_is_the_lag_and_is_tried_again_only_when_something_changed(tmp_path):
    f, kind = make(tmp_path)
    kind.active = ("e", "1")
    kind.refusals[("e", "2")] = Refused("e@2 was refused: member knn: no index")
    wanted = desired.update(tmp_path, ensemble=("e", "2"))
    await f.reconcile(wanted)
    assert f.lag == {"kind": "ensemble", "generation": 1, "desired": "e@2", "active": "e@1",
                     "reason": "e@2 was refused: member knn: no index"}
    assert kind.active == ("e", "1") and lag_metric("ensemble", "rejected") == 1
    for _ in range(3):  # every poll: no retry, no flapping
        await f.reconcile(wanted)
    assert kind.tries == [("e", "2")] and f.status()["converged"] is False
    kind.prints[("e", "2")] = ("changed",)  # its files changed
    del kind.refusals[("e", "2")]
    await f.reconcile(wanted)
    assert kind.tries == [("e", "2")] * 2 and kind.active == ("e", "2") and f.lag is None
    assert lag_metric("ensemble", "") == 0


async def test_a_transient_refusal_is_tried_again_after_the_delay_a_rejection_is_not(tmp_path, monkeypatch):
    f, kind = make(tmp_path)
    kind.refusals[("e", "2")] = Refused("e@2 could not be loaded: out of memory", transient=True)
    kind.refusals[("e", "3")] = Refused("e@3 was rejected: bad stack")
    wanted = desired.update(tmp_path, ensemble=("e", "2"))
    await f.reconcile(wanted)
    await f.reconcile(wanted)
    assert kind.tries == [("e", "2")]
    monkeypatch.setattr(follower, "RETRY_AFTER_S", 0.0)
    await f.reconcile(wanted)
    assert kind.tries == [("e", "2")] * 2
    wanted = desired.update(tmp_path, ensemble=("e", "3"))  # a new choice: tried at once
    await f.reconcile(wanted)
    await f.reconcile(wanted)
    assert kind.tries[2:] == [("e", "3")] and f.lag["desired"] == "e@3"
    wanted = desired.update(tmp_path, ensemble=("e", "4"))
    await f.reconcile(wanted)
    assert kind.active == ("e", "4") and f.lag is None


async def test_a_refusal_it_did_not_try_itself_is_tried_at_the_next_poll(tmp_path):
    f, kind = make(tmp_path)
    wanted = desired.update(tmp_path, ensemble=("e", "2"))
    f.refuse(wanted, "refused at start: no members", tried=False)
    assert f.lag["reason"] == "refused at start: no members"
    await f.reconcile(wanted)
    assert kind.tries == [("e", "2")] and f.lag is None


async def test_start_follows_the_choice_or_publishes_the_policys(tmp_path):
    f, kind = make(tmp_path)

    async def by_policy():
        await kind.serve(("e", "9"))
        return ("e", "9")

    await f.start_locked(desired.read(tmp_path), by_policy)  # nothing chosen: the policy's, published
    assert kind.active == ("e", "9") and desired.read(tmp_path).ensemble == ("e", "9")
    g, other = make(tmp_path)
    await g.start_locked(desired.read(tmp_path), by_policy)  # chosen: followed, nothing written
    assert other.active == ("e", "9") and desired.read(tmp_path).generation == 1
    h, refusing = make(tmp_path)
    refusing.refusals[("e", "9")] = Refused("not in this replica's store")
    await h.start_locked(desired.read(tmp_path), by_policy)  # cannot follow: the policy's, not published
    assert h.lag["reason"] == "not in this replica's store" and desired.read(tmp_path).generation == 1


async def test_a_poll_read_before_an_admin_choice_does_not_undo_it(tmp_path):
    """The poll reads the state, then waits for the lock an activation holds; the activation publishes
    a newer choice. The stale read is dropped (the merged engine's swap test caught it flapping back)."""
    f, kind = make(tmp_path)
    kind.active = ("e", "1")
    await f.publish(("e", "1"), expect=0)
    stale = desired.update(tmp_path, ensemble=("e", "2"), by="other")  # generation 2, read by the poll
    entered, release = asyncio.Event(), asyncio.Event()

    async def activate():  # the admin's activation of e@3, holding the lock
        entered.set()
        await release.wait()
        await kind.serve(("e", "3"))

    admin = asyncio.create_task(_choose(f, ("e", "3"), activate))
    await entered.wait()
    poll = asyncio.create_task(f.reconcile(stale))  # waits for the lock
    await asyncio.sleep(0)
    release.set()
    await admin
    await poll
    assert kind.active == ("e", "3") and ("e", "2") not in kind.tries
    assert desired.read(tmp_path).ensemble == ("e", "3") and f.generation_seen == 3
    await f.reconcile(desired.read(tmp_path))  # the next poll: nothing to do
    assert kind.active == ("e", "3")


async def _choose(f: Follower, key, activate):
    async with f.lock:
        return await f.choose_locked(key, None, activate)
