# Phoenix DemiGod: `make run` serves the mesh, `make test` runs the suite. Both set up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
# The local demo serves without authentication (loudly); see docs/security.md.
AUTH   ?= off
# `make run` installs what serving and building the demo models need; `make setup` (and
# so test and lint) adds what the tests and linters use. Each is redone when the declared
# dependencies change.
RUN_EXTRAS   := build
SETUP_EXTRAS := build,dev,s3,redis,postgres,report
RUN_STAMP    := $(VENV)/.installed-run
STAMP        := $(VENV)/.installed
# llama-cpp-python also compiles llama.cpp's multimodal library (mtmd), which demigod never
# loads: leaving it out takes a sixth of the first install's compiling. A CMAKE_ARGS of
# your own (e.g. -DGGML_CUDA=on, docs/troubleshooting.md) replaces this one.
CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export CMAKE_ARGS
# llama-cpp-python: `native` (the default) lets pip compile it for this CPU with CMAKE_ARGS;
# `portable` installs the worker image's build (x86-64-v3, no -march=native, needs AVX2),
# compiled once and shared with `make images` (containers/llama-wheel): CI uses it so a
# fresh machine compiles llama.cpp once, not twice. docs/benchmarks.md, "CPU build".
LLAMA_BUILD ?= native

.PHONY: setup models run test lint format clean help images

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

define install
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing demigod[$(1)] (first time: compiles llama.cpp from source; README.md gives the times)"
	@# The portable build needs an x86-64 CPU with AVX2; elsewhere pip compiles for this CPU.
	if [ "$(LLAMA_BUILD)" = portable ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null; then \
	  flags="$$(containers/llama-wheel flags worker-cpu)" \
	  && wheel="$$(LLAMA_CMAKE_ARGS="$$flags" containers/llama-wheel build $(BIN)/python \
	    "$$(containers/llama-wheel folder worker-cpu)")" \
	  && $(BIN)/python -m pip install --quiet "$$wheel"; \
	fi
	$(BIN)/python -m pip install --progress-bar on -e '.[$(1)]'
endef

$(RUN_STAMP): pyproject.toml
	$(call install,$(RUN_EXTRAS))
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml
	$(call install,$(SETUP_EXTRAS))
	touch $(STAMP) $(RUN_STAMP)

setup: $(STAMP)  ## create .venv and install everything

models: $(RUN_STAMP)  ## build the demo models (cached under var/)
	$(BIN)/demigod models build-demo

run: models  ## build what is missing, then serve on http://$(HOST):$(PORT) (AUTH=required to log in)
	DEMIGOD_SECURITY__AUTH=$(AUTH) $(BIN)/demigod serve --host $(HOST) --port $(PORT)

test: setup  ## the whole test suite
	$(BIN)/python -m pytest

# `make images IMAGES="gateway worker-cpu worker-cuda"` adds the CUDA worker.
IMAGES ?= gateway worker-cpu

images:  ## build the OCI images with buildah: gateway, worker-cpu (README "Run as containers")
	containers/build-images $(IMAGES)

lint: setup  ## ruff check + ruff format --check + the import graph's layers + mypy
	$(BIN)/ruff check src tests bench deploy/windmill
	$(BIN)/ruff format --check src tests bench deploy/windmill
	$(BIN)/lint-imports --no-cache pyproject.toml
	$(BIN)/mypy

format: setup  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

clean:  ## remove the venv and built models
	rm -rf $(VENV) var
