# `make run` and `make test` set up what is missing (a .venv with the package), then run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev

.PHONY: setup run test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
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
