# `make demo` and `make test` each create .venv with the machine's python3 and install nnlab into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The report tests render report.html in Debian's headless Chromium (root on a fresh machine installs it).
CHROMIUM := /usr/bin/chromium

.PHONY: demo test install clean

install: $(STAMP) $(CHROMIUM)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[tf-cpu,test]"
	touch $(STAMP)

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

demo: $(STAMP)
	$(BIN)/nnlab train configs/digits_mlp.yaml

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -n 2  # two workers: most of the time is TensorFlow starting in subprocesses

clean:
	rm -rf $(VENV) runs .pytest_cache
