# `make run` and `make test` set up what is missing (a .venv with the package), then run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev

.PHONY: setup run test bench clean

# torch first, pinned: a CPU build of 2.13.0 lies on the project's machines; a bare `torch`
# pulled in by diffusers would fetch a multi-GB CUDA build instead.
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,local

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet '$(TORCH)'
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

setup: $(STAMP)

# The example config (ComfyUI, then Automatic1111, plus the placeholder) unless you give one.
run: setup
	IMAGE_STUDIO_CONFIG="$${IMAGE_STUDIO_CONFIG:-examples/studio.yaml}" $(VENV)/bin/image-studio serve

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info backend/*.egg-info
