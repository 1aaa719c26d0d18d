"""A sparse MLP on log price over TF-IDF n-grams: the design that won the Mercari price challenge
(a wide sparse first layer, two small dense layers, a few epochs, several seeds averaged).

Input: TF-IDF of word 1-2 grams of the item's text, with its category as one more token. The first
layer is an `EmbeddingBag` (a sum of the rows of the item's n-grams, weighted by TF-IDF), so only
the rows an item uses are touched. Target: standardised log(1 + price); Huber loss. Each seed is
trained separately; the answer is the mean of the seeds' log predictions.

Saved without pickle: the vectorizer as skops, the seeds' weights as one safetensors file, the
configuration in estimator.json.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.estimators.base import Estimator, EstimatorOptions
from app.estimators.sklearn_base import from_log
from app.estimators.storage import estimator_folder, load_model, read_meta
from app.estimators.weights import parse_weights, sample_weights
from app.model.items import Item

VECTORIZER_FILE = "vectorizer.skops"
WEIGHTS_FILE = "weights.safetensors"


@dataclass
class MlpConfig:
    hidden: tuple[int, ...] = (256, 64, 64)
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    seeds: int = 4
    huber_delta: float = 1.0  # in standard deviations of log price
    max_features: int = 60_000
    min_df: int = 2
    origin_weights: dict[str, float] = field(default_factory=dict)  # app.estimators.weights groups

    @classmethod
    def from_dict(cls, raw: dict) -> MlpConfig:
        raw = dict(raw)
        raw["hidden"] = tuple(raw.get("hidden", cls.hidden))
        raw["origin_weights"] = parse_weights(raw.get("origin_weights") or {})
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


def item_document(item: Item) -> str:
    category = (item.category or "unknown").lower().replace(" ", "_")
    return f"{item.text}\ncategory_{category}"


def _net(vocabulary: int, hidden: Sequence[int]):
    import torch
    from torch import nn

    class SparseMlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.EmbeddingBag(vocabulary, hidden[0], mode="sum", sparse=True)
            self.first_bias = nn.Parameter(torch.zeros(hidden[0]))
            layers: list[nn.Module] = []
            for width_in, width_out in zip(hidden, hidden[1:], strict=False):
                layers += [nn.ReLU(), nn.Linear(width_in, width_out)]
            self.rest = nn.Sequential(*layers, nn.ReLU(), nn.Linear(hidden[-1], 1))

        def forward(self, indices, offsets, values):
            x = self.first(indices, offsets, per_sample_weights=values) + self.first_bias
            return self.rest(x).squeeze(-1)

    return SparseMlp()


def _bag(matrix, rows=None):
    """(indices, offsets, values) tensors of CSR rows, for EmbeddingBag."""
    import torch

    sub = matrix if rows is None else matrix[rows]
    return (torch.from_numpy(sub.indices.astype("int64")), torch.from_numpy(sub.indptr[:-1].astype("int64")),
            torch.from_numpy(sub.data.astype("float32")))


class SparseMlpEstimator(Estimator):
    name = "sparse-mlp"
    needs_training = True

    def __init__(self, config: MlpConfig | None = None, seed: int = 42):
        self.config = config or MlpConfig()
        self.seed = seed
        self.vectorizer = None
        self.nets: list = []
        self.y_mean, self.y_std = 0.0, 1.0

    @classmethod
    def create(cls, options: EstimatorOptions) -> SparseMlpEstimator:
        return cls(seed=options.seed)

    def fit(self, items: Sequence[Item]) -> SparseMlpEstimator:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(items) < 2:
            raise ValueError(f"{self.name}: needs at least 2 training items, got {len(items)}")
        c = self.config
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min(c.min_df, len(items)),
                                          max_features=c.max_features, strip_accents="unicode", dtype=np.float32)
        matrix = self.vectorizer.fit_transform([item_document(i) for i in items]).tocsr()
        y = np.log1p(np.array([i.price for i in items], dtype=np.float64))
        weights = np.asarray(sample_weights(items, c.origin_weights), dtype=np.float64)
        if not weights.sum() > 0:
            raise ValueError(f"{self.name}: every training item weighs 0 (origin weights {c.origin_weights})")
        self.y_mean = float(np.average(y, weights=weights))
        self.y_std = float(np.sqrt(np.average((y - self.y_mean) ** 2, weights=weights)) or 1.0)
        target = ((y - self.y_mean) / self.y_std).astype(np.float32)
        weights = weights.astype(np.float32)
        self.nets = [self._train_one(matrix, target, weights, self.seed + k) for k in range(c.seeds)]
        return self

    def _train_one(self, matrix, target, weights, seed: int):
        import numpy as np
        import torch

        c = self.config
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        net = _net(matrix.shape[1], c.hidden)
        # The wide first layer gets sparse gradients (only the n-grams of the batch); the rest is dense.
        dense = [p for name, p in net.named_parameters() if name != "first.weight"]
        optimizers = [torch.optim.SparseAdam([net.first.weight], lr=c.lr),
                      torch.optim.AdamW(dense, lr=c.lr, weight_decay=c.weight_decay)]
        total_steps = max(1, c.epochs * math.ceil(matrix.shape[0] / c.batch_size))
        schedules = [torch.optim.lr_scheduler.OneCycleLR(o, max_lr=c.lr, total_steps=total_steps) for o in optimizers]
        y, w = torch.from_numpy(target), torch.from_numpy(weights)
        net.train()
        for _ in range(c.epochs):
            order = rng.permutation(matrix.shape[0])
            for start in range(0, len(order), c.batch_size):
                rows = order[start : start + c.batch_size]
                rows_t = torch.from_numpy(rows)
                loss = torch.nn.functional.huber_loss(net(*_bag(matrix, rows)), y[rows_t], reduction="none",
                                                      delta=c.huber_delta)
                loss = (loss * w[rows_t]).sum() / w[rows_t].sum().clamp_min(1e-8)
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for optimizer, schedule in zip(optimizers, schedules, strict=True):
                    optimizer.step()
                    schedule.step()
        net.eval()
        return net

    def log_predictions(self, items: Sequence[Item]):
        import numpy as np
        import torch

        if self.vectorizer is None or not self.nets:
            raise RuntimeError(f"{self.name}: fit it first")
        matrix = self.vectorizer.transform([item_document(i) for i in items]).tocsr().astype(np.float32)
        with torch.inference_mode():
            outs = [net(*_bag(matrix)).numpy() for net in self.nets]
        return np.mean(outs, axis=0) * self.y_std + self.y_mean

    def predict(self, items: Sequence[Item]) -> list[float]:
        if not items:
            return []
        return from_log(self.log_predictions(items))

    def save(self, directory: Path) -> None:
        import torch
        from safetensors.torch import save_file

        from app.estimators.storage import dump_model

        if self.vectorizer is None or not self.nets:
            raise RuntimeError(f"{self.name}: nothing to save before fit")
        # float16 on disk: the wide first layer is seeds x vocabulary x 256 numbers (about 200 MB in
        # float32 for 4 seeds and 50,000 n-grams); answers move by about 1e-3 relative.
        tensors = {f"seed{k}.{key}": value.detach().to(torch.float16).contiguous()
                   for k, net in enumerate(self.nets) for key, value in net.state_dict().items()}
        meta = {"config": asdict(self.config), "seed": self.seed, "y_mean": self.y_mean, "y_std": self.y_std,
                "vocabulary": len(self.vectorizer.vocabulary_)}
        with estimator_folder(directory, self.name, meta) as tmp:
            dump_model(self.vectorizer, tmp / VECTORIZER_FILE)
            save_file(tensors, str(tmp / WEIGHTS_FILE))

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> SparseMlpEstimator:
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = read_meta(directory)
        config = MlpConfig.from_dict(meta["config"])
        estimator = cls(config, seed=int(meta.get("seed", 42)))
        estimator.vectorizer = load_model(directory / VECTORIZER_FILE)
        estimator.y_mean, estimator.y_std = float(meta["y_mean"]), float(meta["y_std"])
        tensors = load_file(str(directory / WEIGHTS_FILE))
        for k in range(config.seeds):
            net = _net(int(meta["vocabulary"]), config.hidden)
            net.load_state_dict({key.split(".", 1)[1]: t.float() for key, t in tensors.items() if key.startswith(f"seed{k}.")})
            net.eval()
            estimator.nets.append(net)
        return estimator
