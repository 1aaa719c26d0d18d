"""`llm-head`: the base LLM's hidden states read out by a ridge regression on log price.

At a few thousand training items the LLM's knowledge is better read out by a regression head
than by generating digits (docs/ensemble.md; the course's students found the same with a 3B
model). Each item's prompt (the one prompt builder, app.model.prompt.build_prompt) goes through the
frozen base model once; the features are the mean over tokens and the last token's state of a few
layers, standardised, then RidgeCV on log1p(price). A new fit reads the served base
(Settings.base_model in the model store); a saved head reads the base it was fitted on, found by
name in the store (a packaged one is prepared), so serving another base in vLLM (gemma3-270m, an
8B Llama) does not invalidate it. Its fingerprint is checked either way.

Its forward pass shares the service's CPU with vLLM, so its cost is the ensemble's latency. New fits
run only the first DEPTH (16 of SmolLM2's 30) decoder layers and read layers 8, 12 and 16: 0.6x the
time of the whole model, and no worse in the stack (docs/ensemble.md). The depth and layers are
recorded in the saved folder and read back, so an older folder (the whole model, layers -1, -4, -8)
is served as it was fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.config import Settings
from app.estimators.backbone import QUANTIZE, computed_dtype, load_backbone
from app.estimators.base import EstimatorOptions
from app.estimators.sklearn_base import SklearnEstimator
from app.estimators.storage import MODEL_FILE, SavedEstimatorError, load_model, read_meta
from app.estimators.title_head import TitleHead
from app.model.items import Item
from app.model.prompt import build_prompt
from app.model.cutter import token_cutter

DEPTH = 16  # decoder layers run (None: all of them)
LAYERS = (8, 12, 16)  # hidden-state layers pooled (0 is the embeddings)
LEGACY = {"depth": None, "layers": [-1, -4, -8]}  # what a folder that records no depth was fitted with
TEXT_TOKENS = 140  # the item text is cut to this many tokens before the prompt is built (a member's `tokens`)
READS = ("text", "title")  # what of an item the head reads
BATCH = 16


def hidden_features(model_dir: Path, texts: Sequence[str], layers: Sequence[int] = LAYERS, progress: bool = True,
                    depth: int | None = DEPTH, dtype: str = "bfloat16", tokens: int = TEXT_TOKENS,
                    quantize: str = "none"):
    """One row per text: [mean, last token] of each layer's hidden state, float32 (numpy); the model
    computes in `dtype` (app.model.hardware.compute_dtype: float32 on a CPU without native bf16).
    With PRICER_VECTOR_CACHE set, rows computed before (same base, depth, layers, dtype) are read
    back and only the other texts go through the model; unset, every text does. Each text is cut to
    `tokens` tokens of the base's tokenizer before the prompt is built: the forward pass's cost.
    quantize="int8" or "int8-token": the decoder's linear layers in int8, the rest in float32 (app.estimators.backbone)."""
    from app.config import vector_cache_path
    from app.runtime.vector_cache import configured

    dtype = computed_dtype(dtype, quantize)
    cache = configured(vector_cache_path())
    if cache is None or not texts:
        return _compute_features(model_dir, texts, layers, progress, depth, dtype, tokens, quantize)
    import numpy as np

    from app.runtime.vector_cache import text_key

    namespace = _namespace(model_dir, layers, depth, dtype, tokens, quantize)
    keys = [text_key(text) for text in texts]
    held = cache.get_many(namespace, keys)
    todo = [i for i, key in enumerate(keys) if key not in held]
    if not todo:
        return np.stack([held[key] for key in keys]).astype(np.float32)
    computed = _compute_features(model_dir, [texts[i] for i in todo], layers, progress, depth, dtype, tokens,
                                 quantize)
    cache.put_many(namespace, {keys[i]: row for i, row in zip(todo, computed, strict=True)})
    if len(todo) == len(keys):
        return computed  # nothing was held: exactly what the uncached call returns
    rows = [held.get(key) for key in keys]
    for i, row in zip(todo, computed, strict=True):
        rows[i] = row
    return np.stack(rows).astype(np.float32)


def _namespace(model_dir: Path, layers: Sequence[int], depth: int | None, dtype: str, tokens: int,
               quantize: str = "none") -> str:
    """Everything a row depends on besides its text: the base's weights, the depth, layers and dtype,
    the text cut and the prompt's words, so that another configuration never reads these rows."""
    import hashlib

    from app.store.base import fingerprint

    prompt = hashlib.sha1(build_prompt("").encode("utf-8")).hexdigest()[:12]
    return (f"llm-head:{fingerprint(model_dir)}:depth={depth}:layers={','.join(map(str, layers))}:dtype={dtype}"
            f":tokens={tokens}:prompt={prompt}" + ("" if quantize == "none" else f":quantize={quantize}"))


def _compute_features(model_dir: Path, texts: Sequence[str], layers: Sequence[int], progress: bool,
                      depth: int | None, dtype: str, tokens: int = TEXT_TOKENS, quantize: str = "none"):
    """hidden_features through the model, every text."""
    import numpy as np
    import torch
    from tqdm import tqdm

    tokenizer, model = load_backbone(str(model_dir), depth, dtype, quantize)
    cut = list(map(token_cutter(tokenizer, tokens), texts))
    prompts = [build_prompt(t) for t in cut]
    # Longest first so each batch pads little; rows are put back in order at the end.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    rows: list = [None] * len(prompts)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    batches = range(0, len(order), BATCH)
    for start in tqdm(batches, desc="llm-head features", unit="batch", disable=not progress or len(order) <= 64):
        index = order[start:start + BATCH]
        enc = tokenizer([prompts[i] for i in index], return_tensors="pt", padding=True)
        with torch.inference_mode():
            # The decoder alone: the causal LM would also compute logits over the whole vocabulary
            # for every token and drop them (0.65-0.71x the time for SmolLM2 at depth 16; the states
            # are identical; docs/ensemble.md, "Serving the ensemble").
            out = model.get_decoder()(**enc, output_hidden_states=True)
        mask = enc["attention_mask"].unsqueeze(-1).float()
        last = enc["attention_mask"].sum(dim=1) - 1
        parts = []
        # A model shallower than the deepest layer asked for (the tests' tiny one) uses what it has.
        count = len(out.hidden_states)
        present = list(dict.fromkeys(min(max(layer, -count), count - 1) for layer in layers))
        for layer in present:
            states = out.hidden_states[layer].float()
            parts.append((states * mask).sum(dim=1) / mask.sum(dim=1))
            parts.append(states[torch.arange(states.shape[0]), last])
        features = torch.cat(parts, dim=1).numpy()
        for row, i in enumerate(index):
            rows[i] = features[row]
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), dtype=np.float32)


class LlmHeadEstimator(TitleHead, SklearnEstimator):
    name = "llm-head"

    def __init__(self, model: object | None = None, model_dir: Path | None = None, depth: int | None = DEPTH,
                 layers: Sequence[int] = LAYERS, dtype: str = "bfloat16", reads: str = "text",
                 tokens: int = TEXT_TOKENS, quantize: str = "none"):
        super().__init__(model)
        self.model_dir = model_dir
        self.depth, self.layers = depth, tuple(int(layer) for layer in layers)
        self.dtype = dtype
        # "text": the item's whole text (cut to TEXT_TOKENS); "title": its title alone, whatever the
        # client sent (about a tenth of the tokens, so of the forward pass: what a large base knows of
        # a product is mostly in its name).
        self.reads = reads
        self.tokens = tokens  # the text's cut in the base's tokens: fewer is a cheaper forward pass
        self.quantize = quantize  # "int8": the base's linear layers in int8 (app.estimators.backbone)

    @classmethod
    def create(cls, options: EstimatorOptions) -> LlmHeadEstimator:
        return cls(model_dir=_base_dir(options.settings), dtype=_dtype(options.settings))

    def build_model(self):
        import numpy as np
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # Strong regularisation: thousands of features, a few thousand items (RidgeCV picked ~3,000).
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(1, 5, 17)))

    def inputs(self, items: Sequence[Item]):
        if self.model_dir is None:
            raise RuntimeError("llm-head: no base model folder")
        if self.reads not in READS:
            raise ValueError(f"{self.name}: reads must be one of {', '.join(READS)}, got {self.reads!r}")
        texts = [item.text if self.reads == "text" else item.title_only().text for item in items]
        if not _good_tokens(self.tokens):
            raise ValueError(f"{self.name}: tokens must be a whole number of at least 8, got {self.tokens!r}")
        if self.quantize not in QUANTIZE:
            raise ValueError(f"{self.name}: quantize must be one of {', '.join(QUANTIZE)}, got {self.quantize!r}")
        return hidden_features(self.model_dir, texts, self.layers, depth=self.depth, dtype=self.dtype,
                               tokens=self.tokens, quantize=self.quantize)

    def meta(self) -> dict:
        from app.store.base import fingerprint

        return {"base_model": self.model_dir.name, "base_fingerprint": fingerprint(self.model_dir), "depth": self.depth,
                "layers": list(self.layers), "fitted_dtype": self.dtype, "reads": self.reads, "tokens": self.tokens,
                "quantize": self.quantize,
                **super().meta()}

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> LlmHeadEstimator:
        from app.store.base import fingerprint

        meta = read_meta(directory)
        model_dir = _fitted_base(meta.get("base_model"), options.settings)
        if meta.get("base_fingerprint") != fingerprint(model_dir):
            raise SavedEstimatorError(
                f"{directory}: fitted on base model {meta.get('base_model')!r} ({meta.get('base_fingerprint')}), "
                f"but the store's base is {model_dir} ({fingerprint(model_dir)})"
            )
        read = LEGACY | {key: meta[key] for key in ("depth", "layers") if key in meta}
        try:
            depth = None if read["depth"] is None else int(read["depth"])
            layers = [int(layer) for layer in read["layers"]]
        except (TypeError, ValueError):
            raise SavedEstimatorError(f"{directory}: bad depth or layers {read}") from None
        tokens = meta.get("tokens", TEXT_TOKENS)  # a folder that records none was fitted on 140
        quantize = meta.get("quantize", "none")  # nor one that records no quantization
        if quantize not in QUANTIZE:
            raise SavedEstimatorError(f"{directory}: bad quantize {quantize!r} (this version knows {', '.join(QUANTIZE)})")
        if not _good_tokens(tokens):
            raise SavedEstimatorError(f"{directory}: bad tokens {tokens!r}")
        return cls(load_model(Path(directory) / MODEL_FILE), model_dir, depth=depth, layers=layers,
                   dtype=_dtype(options.settings), reads=meta.get("reads", "text"), tokens=tokens,
                   quantize=quantize).load_title_head(directory)


def _good_tokens(tokens) -> bool:
    """A text cut the head can read: a whole number of tokens, at least 8 (not a bool)."""
    return isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 8


def _dtype(settings: Settings) -> str:
    """The machine's compute dtype (the head's features move by noise only between bf16 and fp32:
    docs/inference.md, "Compute dtype")."""
    from app.model.hardware import compute_dtype

    return compute_dtype(settings, "cpu").dtype


def _base_dir(settings: Settings) -> Path:
    from app.store.base import resolve_base

    return resolve_base(settings)


def _fitted_base(name: str | None, settings: Settings) -> Path:
    """The base a saved head names, when the store has it (or can prepare it); else the served base,
    which the fingerprint check then judges."""
    from app.store.base import PACKAGED, is_model_folder, resolve_base

    if name and "/" not in name and (is_model_folder(settings.base_dir / name) or name in PACKAGED):
        return resolve_base(settings.model_copy(update={"base_model": name}))
    return _base_dir(settings)
