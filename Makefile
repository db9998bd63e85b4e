# `make demo` and `make test` each create .venv with the machine's python3 and install nnlab into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The report tests render report.html in Debian's headless Chromium (root on a fresh machine installs it).
CHROMIUM := /usr/bin/chromium

.PHONY: demo test golden bench install clean

install: $(STAMP) $(CHROMIUM)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[tf-cpu,jax,test]"
	touch $(STAMP)

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

demo: $(STAMP)
	$(BIN)/nnlab train configs/digits_mlp.yaml

# The end-to-end tests (train, resume, evaluate, inspect, truncated BPTT, backends) run again on JAX.
JAX_TESTS := tests/test_train.py tests/test_resume.py tests/test_evaluate.py tests/test_tbptt.py tests/test_backend.py tests/test_inspect_sequences.py \
	tests/test_golden_runs.py tests/test_sweep_host.py tests/test_fused.py

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -n 2  # two workers: most of the time is TensorFlow starting in subprocesses
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q -n 2 $(JAX_TESTS)

# Rewrite tests/golden_runs.json for this CPU class on both backends: only when a change is meant to move the numbers
# (say why in the commit), or to add a CPU class the file lacks.
golden: $(STAMP)
	$(BIN)/python -m pytest -q -p no:xdist tests/test_golden_runs.py -k stored_numbers --update-golden
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q -p no:xdist tests/test_golden_runs.py -k stored_numbers --update-golden

# TensorFlow vs JAX, nnlab vs plain Keras, interleaved; BENCH_ARGS=--full for the full-length runs.
# The real data: NNLAB_DATA_DIR, the course's datasets/ folder wherever it is (made absolute here).
bench: $(STAMP)
	@test -n "$(NNLAB_DATA_DIR)" || { echo 'make bench: set NNLAB_DATA_DIR to the course datasets/ folder, e.g. NNLAB_DATA_DIR=$$HOME/course/datasets make bench' >&2; exit 2; }
	NNLAB_DATA_DIR=$(abspath $(NNLAB_DATA_DIR)) $(BIN)/python benchmarks/backends.py --write benchmarks/RESULTS.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
