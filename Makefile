# The two commands a person needs: `make lab` (open the course) and `make test` (run every check).
# Both create .venv with the pinned environment when it is missing or out of date.

VENV      ?= .venv
PYTHON    ?= $(shell command -v python3.11 || command -v python3)
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
PIP_FLAGS ?= --quiet --disable-pip-version-check
# Headless use: `make lab HEADLESS=1 PORT=8890` (no browser, loopback only, chosen port).
PORT      ?= 8888
HEADLESS  ?=
# Jupyter refuses to start as root (containers, CI machines) unless told that this is deliberate.
LAB_FLAGS := --notebook-dir=course --port=$(PORT) $(if $(HEADLESS),--no-browser --ServerApp.ip=127.0.0.1) \
             $(if $(filter 0,$(shell id -u)),--allow-root)
# The venv's own kernel and Jupyter paths come before any in the user's home.
export JUPYTER_PREFER_ENV_PATH := 1
# JAX on CPU only, without probing for accelerators the course does not use.
export JAX_PLATFORMS := cpu

.PHONY: env lab test lint test-fast test-browser bench course lock clean

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -r requirements.lock
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	@touch $@

# Students' kernels share a persistent JAX compilation cache in the checkout (git-ignored): later notebooks
# load the compiled step instead of compiling it again. Tests and grading run without it.
lab: env
	RESUMABLE_JAX_CACHE=$(CURDIR)/.cache/jax $(BIN)/jupyter lab $(LAB_FLAGS)

lint: env
	$(BIN)/ruff check src tests grader benchmarks solutions course

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile --nbval-lax --nbval-cell-timeout=300 tests solutions

test-fast: env
	$(BIN)/python -m pytest -m "not slow and not browser"

# Only the end-to-end test (also part of `make test`): JupyterLab in headless Chromium, screenshots in
# artifacts/browser/. Installs Debian's chromium when run as root; otherwise skips, saying why.
test-browser: env
	$(BIN)/python -m pytest -m browser -rs tests/test_browser.py

# Measure the waits of students and instructors; print the table and write it into README.md.
bench: env
	$(BIN)/python -m benchmarks.bench --readme

# Regenerate the student notebooks in course/ from solutions/ (atomic: a failure leaves course/ as it was).
course: env
	$(BIN)/python -m grader release

lock: env
	@(echo "# Exact pins for Python 3.11 (make lock). Installed by make into .venv; environment.yml installs it too."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -v -E '^(pip|resumable)==' | sort -f) > requirements.lock

clean:
	rm -rf $(VENV) grader/work artifacts .pytest_cache .cache
