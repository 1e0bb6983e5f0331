# `make run` and `make test` set up what is missing (a .venv with the package), then run.
# `make run-openwebui` sets up a second venv with Open WebUI and starts it with the studio inside.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev

.PHONY: setup setup-openwebui ui ui-test browser run run-openwebui test bench clean

# torch first, pinned: a CPU build of 2.13.0 lies on the project's machines; a bare `torch`
# pulled in by diffusers (or by Open WebUI's sentence-transformers) would fetch a multi-GB CUDA
# build instead.
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,local

# Open WebUI pins its dependencies exactly (fastapi, pydantic, SQLAlchemy, transformers...), so it
# gets a venv of its own: the studio there runs as it is deployed, under those pins, while .venv
# keeps the newest releases our ranges allow. Set OWUI_VENV=.venv to use one venv for both.
OWUI_VENV  ?= .venv-openwebui
OWUI_PY    := $(OWUI_VENV)/bin/python
OWUI_STAMP := $(OWUI_VENV)/.installed-openwebui
OWUI_HOST  ?= 127.0.0.1
OWUI_PORT  ?= 8080
OWUI_ARGS  ?=

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet '$(TORCH)'
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

setup: $(STAMP)

# open-webui>=0.12,<0.13 (the `openwebui` extra) and the studio, editable: about 70 s here.
$(OWUI_STAMP): pyproject.toml
	test -x $(OWUI_PY) || $(PYTHON) -m venv $(OWUI_VENV)
	$(OWUI_PY) -m pip install --quiet --upgrade pip
	$(OWUI_PY) -c "import torch" 2>/dev/null || $(OWUI_PY) -m pip install --quiet '$(TORCH)'
	$(OWUI_PY) -m pip install --quiet -e '.[openwebui]'
	touch $(OWUI_STAMP)

setup-openwebui: $(OWUI_STAMP)

# The browser UI (frontend/, Svelte 5 + Vite) is built into backend/image_studio/web/, which the
# server mounts at /image-studio/. Rebuilt when a source file is newer than the build.
WEB_INDEX  := backend/image_studio/web/index.html
NODE_STAMP := frontend/node_modules/.installed
UI_SOURCES := $(shell find frontend/src -type f 2>/dev/null) frontend/index.html frontend/vite.config.ts \
              frontend/svelte.config.js frontend/package-lock.json

$(NODE_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

$(WEB_INDEX): $(NODE_STAMP) $(UI_SOURCES)
	cd frontend && npm run --silent build -- --logLevel warn

ui: $(WEB_INDEX)

# The typed client matches openapi.json (tests/test_openapi_sync.py checks openapi.json against the
# server), the type check (svelte-check) and the unit tests of the UI's logic (vitest).
ui-test: $(NODE_STAMP)
	cd frontend && npm run --silent check:api && npm run --silent check && npm test --silent

# Debian's Chromium for the browser tests (tests/e2e): never a browser download.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The example config (ComfyUI, then Automatic1111, plus the placeholder) unless you give one.
run: setup ui
	IMAGE_STUDIO_CONFIG="$${IMAGE_STUDIO_CONFIG:-examples/studio.yaml}" $(VENV)/bin/image-studio serve

# The real Open WebUI with the studio inside, data in ./data/openwebui (DATA_DIR=... to move it).
# OWUI_ARGS=--offline starts it without internet access (no embedding-model download).
run-openwebui: setup-openwebui ui
	IMAGE_STUDIO_CONFIG="$${IMAGE_STUDIO_CONFIG:-examples/studio.yaml}" \
		$(OWUI_VENV)/bin/image-studio openwebui --host $(OWUI_HOST) --port $(OWUI_PORT) $(OWUI_ARGS)

# tests/openwebui start Open WebUI from $(OWUI_VENV) (OPENWEBUI_PYTHON) in a subprocess.
test: setup setup-openwebui ui browser ui-test
	OPENWEBUI_PYTHON="$(abspath $(OWUI_PY))" CHROMIUM="$$(command -v chromium)" $(PY) -m pytest $(PYTEST_ARGS)

bench: setup ui browser
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(OWUI_VENV) build *.egg-info backend/*.egg-info frontend/node_modules backend/image_studio/web
