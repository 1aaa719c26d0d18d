"""Trainer callbacks: export every save as an adapter version, and draw the loss curve."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from app.runtime.atomic import atomic_write_text, replacing

log = logging.getLogger(__name__)


class ExportCallback(TrainerCallback):
    """After each trainer checkpoint, write the same weights as an adapter version."""

    def __init__(self, export: Callable[[object, int, bool], Path]):
        self.export = export
        self.versions: list[Path] = []

    def on_save(self, args, state, control, model=None, **kwargs):
        final = state.max_steps > 0 and state.global_step >= state.max_steps
        path = self.export(model, state.global_step, final)
        self.versions.append(path)
        log.info("exported step %d as %s", state.global_step, path)
        print(f"exported adapter version {path}", flush=True)


class LossCurveCallback(TrainerCallback):
    """Training loss (from the trainer's own log history, so it survives a resume) as JSON + PNG."""

    def __init__(self, work_dir: Path):
        self.work_dir = Path(work_dir)

    def _write(self, state) -> None:
        points = [(e["step"], e["loss"]) for e in state.log_history if "loss" in e and "step" in e]
        if not points:
            return
        atomic_write_text(self.work_dir / "loss.json", json.dumps([{"step": s, "loss": v} for s, v in points]))
        write_loss_png(points, self.work_dir / "loss.png")

    def on_save(self, args, state, control, **kwargs):
        self._write(state)

    def on_train_end(self, args, state, control, **kwargs):
        self._write(state)


def write_loss_png(points: list[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", linewidth=1)
    ax.set(xlabel="optimizer step", ylabel="training loss (price tokens)", title="Training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
