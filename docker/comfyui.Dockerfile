# syntax=docker/dockerfile:1
# ComfyUI on the CPU, for docker-compose.dev.yaml (service comfyui). Build context: docker/.
#
#   docker build -f docker/comfyui.Dockerfile --build-arg COMFYUI_VERSION=v0.3.64 docker
#
# Torch comes from PyTorch's CPU wheel index first, so that ComfyUI's requirements.txt finds it
# satisfied and pip never pulls a multi-GB CUDA build. The torch trio is pinned to one release
# of the same season as ComfyUI v0.3.64.

FROM python:3.11-slim-bookworm

ARG COMFYUI_VERSION=v0.3.64
ARG COMFYUI_REPO=https://github.com/comfyanonymous/ComfyUI.git
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_PACKAGES="torch==2.8.0 torchvision==0.23.0 torchaudio==2.8.0"

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

RUN git clone --depth 1 --branch "${COMFYUI_VERSION}" "${COMFYUI_REPO}" /opt/ComfyUI

WORKDIR /opt/ComfyUI
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" ${TORCH_PACKAGES} \
    && pip install --no-cache-dir -r requirements.txt

EXPOSE 8188
# The compose file repeats this command with each flag explained.
CMD ["python", "main.py", "--listen", "0.0.0.0", "--port", "8188", "--preview-method", "auto", "--cpu"]
