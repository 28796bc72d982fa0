# The two commands a person needs: `make lab` (open the course) and `make test` (run every check).
# Both create .venv with the pinned environment when it is missing or out of date.

VENV      ?= .venv
# Which Python builds the venv: empty means scripts/find-python searches (python3.13, python3.12, python3,
# pyenv's versions); `make PYTHON=/path/to/python3.13 ...` names one. PY_WANT=3.12 accepts only that version.
PYTHON    ?=
PY_WANT   ?=
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

.PHONY: env venv lab test lint nbval test-fast test-browser bench course lock clean

# The venv, checked first: one whose Python the course no longer uses (the 3.11 course's) is replaced.
env: venv
	@$(MAKE) --no-print-directory -q $(STAMP) || $(MAKE) --no-print-directory $(STAMP)

WANT := $(if $(PY_WANT),--want $(PY_WANT))
venv:
	@if [ -e $(VENV) ] && ! scripts/find-python $(WANT) $(BIN)/python >/dev/null 2>&1; then \
	  echo "Replacing $(VENV): its Python is not one the course uses ($(or $(PY_WANT),3.12 or 3.13))"; rm -rf $(VENV); fi
	@if [ ! -x $(BIN)/python ]; then python=$$(scripts/find-python $(WANT) $(PYTHON)) && "$$python" -m venv $(VENV); fi

$(STAMP): requirements.lock pyproject.toml
	$(BIN)/python -m pip install $(PIP_FLAGS) -r requirements.lock
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	@touch $@

# Students' kernels share a persistent JAX compilation cache in the checkout (git-ignored): later notebooks
# load the compiled step instead of compiling it again. The tests' kernels and jobs share one of their own
# (TEST_JAX_CACHE); the grader gives each student a copy of one built from the assignment's solution.
lab: env
	RESUMABLE_JAX_CACHE=$(CURDIR)/.cache/jax $(BIN)/jupyter lab $(LAB_FLAGS)

# Ruff's checks (.py lines up to 120 characters), then notebook code lines up to 100 (a JupyterLab cell's width).
lint: env
	$(BIN)/ruff check src tests grader benchmarks solutions course
	$(BIN)/ruff check --select E501 --line-length 100 solutions course

# Every check; it ends with the 30 slowest tests, so each run says what the suite costs. Each notebook runs
# many times in the suite (nbval, nbgrader, the wrong-answer tables): after the first, its programs load from
# the tests' compilation cache (the same programs, so the same bits).
TEST_JAX_CACHE ?= $(CURDIR)/.cache/jax-tests
test: lint
	RESUMABLE_JAX_CACHE=$(TEST_JAX_CACHE) $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=30 --nbval-lax --nbval-cell-timeout=300 tests solutions

# Only the solution notebooks under nbval, each with its wrong-answer table after its last cell (CI runs it on
# Python 3.12 too: make nbval VENV=.venv-3.12 PY_WANT=3.12).
nbval: env
	RESUMABLE_JAX_CACHE=$(TEST_JAX_CACHE) $(BIN)/python -m pytest -p no:cacheprovider -n 2 --dist loadfile --nbval-lax --nbval-cell-timeout=300 solutions

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
	@(echo "# Exact pins for Python 3.12 and 3.13 (make lock). Installed by make into .venv; environment.yml installs it too."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -v -E '^(pip|resumable)==' | sort -f) > requirements.lock

clean:
	rm -rf $(VENV) .venv-3.12 grader/work artifacts .pytest_cache .cache
