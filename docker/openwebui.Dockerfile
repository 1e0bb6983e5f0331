# syntax=docker/dockerfile:1
# Open WebUI 0.12 with Image Studio installed, for docker-compose.dev.yaml (service open-webui).
#
# Build context: the repository root. Only pyproject.toml, README.md and backend/ are copied
# (openwebui.Dockerfile.dockerignore beside this file keeps .venv, data and caches out).
#
#   docker build -f docker/openwebui.Dockerfile --build-arg OPEN_WEBUI_VERSION=0.12.4 .
#
# The base image keeps Open WebUI's source in /app/backend (not a pip package), its built
# frontend in /app/build and its data in /app/backend/data, and runs as root by default.

ARG OPEN_WEBUI_VERSION=0.12.4

# The studio's browser UI (frontend/, Svelte + Vite), built in a Node 20 stage: npm 11, as the
# lock file was made with it (Vite 8 wants it).
FROM node:20-slim AS ui
WORKDIR /src/frontend
RUN npm install -g npm@11 --no-audit --no-fund
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/index.html frontend/vite.config.ts frontend/svelte.config.js frontend/tsconfig.json ./
COPY frontend/src ./src
RUN npx vite build --outDir /ui --emptyOutDir

FROM ghcr.io/open-webui/open-webui:${OPEN_WEBUI_VERSION}

WORKDIR /app/image-studio
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY --from=ui /ui ./backend/image_studio/web

# Install the studio under Open WebUI's exact pins: every distribution already in the image is
# a constraint, so pip adds the studio's own dependencies and changes none of Open WebUI's.
RUN pip list --format=freeze > /tmp/open-webui-pins.txt \
    && pip install --no-cache-dir --constraint /tmp/open-webui-pins.txt /app/image-studio \
    && rm /tmp/open-webui-pins.txt

# The image's layout, spelled out for `image-studio openwebui`: open_webui is imported from
# /app/backend (PYTHONPATH), and FROM_INIT_PY stays false so that Open WebUI looks for its
# frontend in /app/build and its version in /app/package.json, as the image's own start.sh has
# it (the pip-installed layout, FROM_INIT_PY=true, keeps both inside the package instead).
ENV PYTHONPATH=/app/backend \
    FROM_INIT_PY=false \
    DATA_DIR=/app/backend/data \
    FRONTEND_BUILD_DIR=/app/build

WORKDIR /app/backend
EXPOSE 8080

# Starts the real Open WebUI (open_webui.main:app under uvicorn) with the studio mounted: its API
# at /api/v1/image-studio, its UI at /image-studio/ and the OpenAI-compatible facade at
# /api/v1/image-studio/openai/v1. If the studio fails to load, Open WebUI still starts and logs why.
CMD ["image-studio", "openwebui", "--host", "0.0.0.0", "--port", "8080"]
