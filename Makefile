# The two commands of the README: `make run` and `make test`. Everything they need installs here.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
# uv from PATH when present, else a project-local copy installed from PyPI into .tools/
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)

# Telemetry off in everything the project runs; state of every tool stays inside the project.
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export UV_COMPILE_BYTECODE := 1
export NO_MKDOCS_2_WARNING := 1
VENV_BIN := $(CURDIR)/.venv/bin
export PATH := $(VENV_BIN):$(PATH)

# docs site: built offline from docs/ + the code (mkdocs.yml; CLI and params reference generated at build)
.PHONY: help setup docs docs-build image test-deploy run test test-slow test-crash test-cache coverage test-unit bench lint clean browser ui-check ui-shots
help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

UV_SYNC_FLAGS ?=
# The docs group (mkdocs, mkdocs-material) comes with the dev group: a developer's and CI's setup builds the
# docs site; the images (--no-dev) get neither.
SYNC_GROUPS = $(if $(findstring --no-dev,$(UV_SYNC_FLAGS)),,--group docs)
setup: $(UV)  ## install the locked environment into .venv (uv sync --frozen, dev + docs groups; the images add --no-dev)
	$(UV) sync --frozen $(SYNC_GROUPS) $(UV_SYNC_FLAGS)

image: setup  ## the Dockerfile's images (mlpipe-service, mlpipe-flows) with buildah, reaching no image registry
	scripts/image.sh $(VENV_BIN)/uv

# Not part of `make test`: builds the service image, then runs it with podman against a project's MLflow
# store and a prediction log in PostgreSQL on 127.0.0.1:5432 (docs/how-to/containers.md).
test-deploy: image  ## the deployment test: the container answers as the model does (marker `deploy`)
	$(VENV_BIN)/pytest tests/integration/test_deploy.py -m deploy -n 0 -p no:cacheprovider

run: setup  ## the main job: bootstrap data, dvc repro, record the run in MLflow, register the model
	$(VENV_BIN)/mlpipe run

test: lint test-cache browser  ## lint, then the test suite (unit + integration with real git, DVC, MLflow, Prefect), slow tier aside
	$(VENV_BIN)/pytest

test-slow: test-cache  ## the slow tier: latency bounds alone (marker `timing`), then hog-loaded probes, locked-environment reproduces, the bundled history (`slow`)
	$(VENV_BIN)/pytest -m timing -n 0
	$(VENV_BIN)/pytest -m slow

# The reproduce proof builds a second locked environment (scikit-learn 1.9.0 instead of the lock's) with
# `uv sync --frozen --offline`: its one package that uv.lock does not pin goes into uv's cache here, at
# setup, hash-checked, so the tests themselves never reach the network.
test-cache: setup
	$(UV) pip install --quiet --no-deps --python $(VENV_BIN)/python --target $(CURDIR)/.tools/prefetch \
		-r tests/fixtures/prefetch.txt

coverage: lint test-cache browser  ## the same suite with coverage measured in every Python subprocess; fails under the floor (85%)
	$(VENV_BIN)/pytest --cov --cov-report=term

# The top floors stay thin: in flows, commands and routes no function over complexity 15 or 60 statements;
# the exceptions are the `# noqa: C901, PLR0915` on their `def` lines (each says why, or what splits it). No
# function body over 60 lines either (scripts/function_lines.py; its exceptions listed there, with reasons).
THIN_FLOORS := src/mlpipe/flows src/mlpipe/cli src/mlpipe/serving
THIN_RULES := --select C901,PLR0915 --config 'lint.mccabe.max-complexity = 15' --config 'lint.pylint.max-statements = 60'

lint: setup  ## ruff (rules, format, line length 110), thin top floors, import contracts (layers), hadolint
	$(VENV_BIN)/ruff check src tests bench scripts
	$(VENV_BIN)/ruff check $(THIN_RULES) $(THIN_FLOORS)
	$(VENV_BIN)/python scripts/function_lines.py $(THIN_FLOORS)
	$(VENV_BIN)/ruff format --check src tests bench scripts
	$(VENV_BIN)/lint-imports
	$(VENV_BIN)/hadolint Dockerfile

# The docs site, built offline (no fonts, scripts or styles from a CDN: the theme's own files), strict: a broken
# link or a page left out of the nav fails the build. `make docs` then serves site/ on 127.0.0.1 (a free
# port, printed); DOCS_PORT=N picks one. `make docs-build` only builds.
docs-build: setup  ## build the docs site into site/ (mkdocs build --strict; the CLI and params reference generated from the code)
	$(VENV_BIN)/mkdocs build --strict --site-dir $(CURDIR)/site

DOCS_PORT ?= 0
docs: docs-build  ## build the docs site, then serve site/ on 127.0.0.1 (a free port, printed; Ctrl-C stops it)
	$(VENV_BIN)/python scripts/serve_docs.py $(CURDIR)/site --port $(DOCS_PORT)

# The browser check drives Debian's Chromium (Playwright never downloads a browser of its own here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:  ## Debian's Chromium for the browser check, installed when missing
	@command -v chromium >/dev/null || { echo "installing Debian's chromium"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

ui-check: setup browser  ## every page a person is pointed at, in headless Chromium after a real run; screenshots in .ui-check/
	$(VENV_BIN)/pytest tests/integration/test_ui_check.py -n 0

ui-shots:  ## the browser check, also writing the small screenshots of the README and docs to docs/screenshots/
	UI_CHECK_README_SHOTS=$(CURDIR)/docs/screenshots $(MAKE) ui-check

# Not part of `make test` (about an hour on 2 cores): every moment of a run x SIGINT, SIGTERM, SIGKILL, each
# followed by a plain `mlpipe run`; one project at a time, the table printed at the end.
test-crash: setup  ## the full crash sweep: a run interrupted anywhere is completed by the next (prints the table)
	$(VENV_BIN)/pytest tests/integration/test_crash.py -m crash_sweep -n 0 -p no:cacheprovider

test-unit: setup  ## unit tests only
	$(VENV_BIN)/pytest tests/unit

bench: setup  ## benchmarks: figures printed and written under bench/results/
	$(VENV_BIN)/python bench/pipeline.py
	$(VENV_BIN)/python bench/reproduce.py
	$(VENV_BIN)/python bench/serve.py
	$(VENV_BIN)/python bench/monitor.py
	$(VENV_BIN)/python bench/sweep.py
	$(VENV_BIN)/python bench/large.py
	$(VENV_BIN)/python bench/tasks.py
	$(VENV_BIN)/python bench/landing.py

clean:  ## remove local state (mlruns, artifacts, DVC store and cache, venv); data.dvc and dvc.lock stay
	rm -rf .venv .tools mlruns artifacts .dvcstore .dvc/cache .dvc/tmp .prefect data
