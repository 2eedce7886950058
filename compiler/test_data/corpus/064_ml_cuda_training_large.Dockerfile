# syntax=docker/dockerfile:1
# Training and serving image for a PyTorch model on CUDA 12. Large on purpose: it builds
# a few native dependencies from source, which is what real ML images end up doing.

ARG CUDA_VERSION=12.4.1
ARG CUDNN=cudnn
ARG UBUNTU=ubuntu22.04
ARG PYTHON_VERSION=3.11
ARG TORCH_VERSION=2.3.1
ARG TORCH_CUDA=cu121
ARG MAX_JOBS=4
ARG TORCH_CUDA_ARCH_LIST="7.0 7.5 8.0 8.6 8.9 9.0+PTX"

#=====================================================================
# Stage: cuda-base — system libraries, Python, user
#=====================================================================
FROM nvidia/cuda:${CUDA_VERSION}-${CUDNN}-devel-${UBUNTU} AS cuda-base
ARG PYTHON_VERSION
ARG DEBIAN_FRONTEND=noninteractive

ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update && apt-get install -y --no-install-recommends \
        software-properties-common \
        gpg-agent \
    && add-apt-repository ppa:deadsnakes/ppa \
    && apt-get update && apt-get install -y --no-install-recommends \
        build-essential \
        ca-certificates \
        ccache \
        cmake \
        curl \
        ffmpeg \
        git \
        git-lfs \
        htop \
        libaio-dev \
        libgl1 \
        libglib2.0-0 \
        libgomp1 \
        libibverbs-dev \
        libjpeg-turbo8-dev \
        libnuma-dev \
        libopenmpi-dev \
        libpng-dev \
        libsm6 \
        libsndfile1 \
        libxext6 \
        libxrender1 \
        ninja-build \
        numactl \
        openmpi-bin \
        openssh-client \
        pciutils \
        python${PYTHON_VERSION} \
        python${PYTHON_VERSION}-dev \
        python${PYTHON_VERSION}-venv \
        rdma-core \
        tmux \
        unzip \
        vim-tiny \
        wget

RUN python${PYTHON_VERSION} -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip setuptools wheel packaging

#=====================================================================
# Stage: torch — the framework and its CUDA wheels
#=====================================================================
FROM cuda-base AS torch
ARG TORCH_VERSION
ARG TORCH_CUDA
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install \
        --extra-index-url https://download.pytorch.org/whl/${TORCH_CUDA} \
        torch==${TORCH_VERSION} \
        torchvision \
        torchaudio
RUN python - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda)
EOF

#=====================================================================
# Stage: flash-attn — compiled against the torch above
#=====================================================================
FROM torch AS flash-attn
ARG MAX_JOBS
ARG TORCH_CUDA_ARCH_LIST
ARG FLASH_ATTN_VERSION=2.5.9.post1
ENV MAX_JOBS=${MAX_JOBS} \
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST} \
    CCACHE_DIR=/root/.ccache
RUN --mount=type=cache,target=/root/.ccache \
    --mount=type=cache,target=/root/.cache/pip \
    pip wheel --no-build-isolation --wheel-dir /wheels \
        "flash-attn==${FLASH_ATTN_VERSION}"

#=====================================================================
# Stage: apex — NVIDIA mixed-precision extensions from git
#=====================================================================
FROM torch AS apex
ARG MAX_JOBS
ARG TORCH_CUDA_ARCH_LIST
ENV MAX_JOBS=${MAX_JOBS} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST}
ADD https://github.com/NVIDIA/apex.git#23.08 /src/apex
WORKDIR /src/apex
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel -v --no-build-isolation --wheel-dir /wheels \
        --config-settings "--build-option=--cpp_ext" \
        --config-settings "--build-option=--cuda_ext" \
        .

#=====================================================================
# Stage: requirements — the pure-Python stack
#=====================================================================
FROM torch AS requirements
WORKDIR /build
COPY requirements/base.txt requirements/train.txt requirements/serve.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r base.txt -r train.txt -r serve.txt
COPY --from=flash-attn /wheels /wheels/flash-attn
COPY --from=apex /wheels /wheels/apex
RUN pip install /wheels/flash-attn/*.whl /wheels/apex/*.whl && rm -rf /wheels

#=====================================================================
# Stage: dev — everything plus tooling, for interactive work
#=====================================================================
FROM requirements AS dev
ARG USERNAME=researcher
ARG USER_UID=1000
ARG USER_GID=1000
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install \
        black \
        ipykernel \
        ipywidgets \
        jupyterlab \
        matplotlib \
        nvitop \
        pre-commit \
        pytest \
        ruff \
        tensorboard
RUN groupadd --gid ${USER_GID} ${USERNAME} \
    && useradd --uid ${USER_UID} --gid ${USER_GID} --create-home --shell /bin/bash ${USERNAME} \
    && mkdir -p /workspace /data /checkpoints \
    && chown -R ${USER_UID}:${USER_GID} /workspace /data /checkpoints /opt/venv
COPY --chown=${USER_UID}:${USER_GID} <<EOF /home/${USERNAME}/.jupyter/jupyter_server_config.py
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.open_browser = False
c.ServerApp.root_dir = "/workspace"
EOF
USER ${USERNAME}
WORKDIR /workspace
EXPOSE 8888 6006
CMD ["jupyter", "lab"]

#=====================================================================
# Stage: train — the training entry point with the project code
#=====================================================================
FROM requirements AS train
WORKDIR /app
COPY --link pyproject.toml README.md ./
COPY --link src/ src/
COPY --link configs/ configs/
RUN pip install --no-deps -e .
ENV NCCL_DEBUG=WARN \
    NCCL_IB_DISABLE=0 \
    OMP_NUM_THREADS=8 \
    HF_HOME=/cache/huggingface \
    TRANSFORMERS_CACHE=/cache/huggingface/transformers
VOLUME ["/data", "/checkpoints", "/cache"]
COPY --chmod=755 <<'EOF' /usr/local/bin/launch
#!/usr/bin/env bash
set -euo pipefail
NNODES="${NNODES:-1}"
NPROC="${NPROC_PER_NODE:-$(nvidia-smi -L | wc -l)}"
exec torchrun \
    --nnodes="${NNODES}" \
    --nproc-per-node="${NPROC}" \
    --rdzv-backend=c10d \
    --rdzv-endpoint="${MASTER_ADDR:-localhost}:${MASTER_PORT:-29500}" \
    -m mymodel.train "$@"
EOF
ENTRYPOINT ["launch"]
CMD ["--config", "configs/base.yaml"]

#=====================================================================
# Stage: serve-runtime — slim CUDA runtime for inference
#=====================================================================
FROM nvidia/cuda:${CUDA_VERSION}-${CUDNN}-runtime-${UBUNTU} AS serve
ARG PYTHON_VERSION
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
        software-properties-common \
    && add-apt-repository ppa:deadsnakes/ppa \
    && apt-get update && apt-get install -y --no-install-recommends \
        python${PYTHON_VERSION} \
        libgomp1 \
        tini \
    && apt-get purge -y software-properties-common \
    && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*
COPY --from=requirements /opt/venv /opt/venv
COPY --from=train /app/src /app/src
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/src \
    MODEL_DIR=/models
RUN useradd --system --uid 10001 serve
USER serve
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v1/health').status == 200 else 1)"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "mymodel.serve", "--host", "0.0.0.0", "--port", "8000"]
