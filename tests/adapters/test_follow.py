"""Publishing to the desired state from the adapter manager (engine double): a compare-and-set lost
to a write that chose only an ensemble is retried over it, not followed to the base model; one lost
to another adapter choice is followed."""

from __future__ import annotations

from app.adapters.manager import AdapterManager
from app.versions import desired
from tests.adapters.conftest import V1, V2, store_settings
from tests.adapters.engine_double import RecordingEngine


async def started(models_dir, base):
    manager = AdapterManager(store_settings(models_dir, base, adapter_policy="manual"), RecordingEngine(), base)
    await manager.start()
    return manager


async def test_a_lost_race_to_an_ensemble_only_write_is_retried(models_dir, tiny_model_dir, store):
    manager = await started(models_dir, tiny_model_dir)
    assert manager.active.label == f"pa@{V2}"
    desired.state_path(models_dir).unlink()  # a fresh store, as two replicas starting at once see it
    desired.update(models_dir, ensemble=("pricer-ensemble", "e1"))  # the other one chose only its bundle
    state = await manager.follower.publish(("pa", V2), expect=0)  # this one read generation 0
    assert (state.generation, state.adapter, state.ensemble) == (2, ("pa", V2), ("pricer-ensemble", "e1"))
    assert manager.active.label == f"pa@{V2}"  # not switched to the base model by "nothing chosen"
    await manager.close()


async def test_a_lost_race_to_another_adapter_choice_is_followed(models_dir, tiny_model_dir, store):
    manager = await started(models_dir, tiny_model_dir)
    generation = desired.read(models_dir).generation
    desired.update(models_dir, adapter=("pa", V1), by="other")
    found = await manager.follower.publish(("pa", V2), expect=generation)
    assert found.adapter == ("pa", V1) and manager.active.label == f"pa@{V1}"
    assert desired.read(models_dir).adapter == ("pa", V1)
    await manager.close()
