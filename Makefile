# The two commands of the README: `make demo` (main job, embedded SQLite) and `make test`
# (ruff's lint and format check, then the suite).
# `make protos` regenerates the gRPC code from protos/ (also run by the install step);
# the generated ledger/v1/*_pb2*.py files are build output, never edited or committed.
VENV ?= .venv
PYTHON ?= python3
PROTOS := $(wildcard protos/ledger/v1/*.proto)

$(VENV)/.installed: pyproject.toml $(PROTOS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	$(MAKE) protos
	touch $@

.PHONY: install protos demo test
install: $(VENV)/.installed

protos:
	$(VENV)/bin/python -m grpc_tools.protoc --proto_path=protos --python_out=. \
		--pyi_out=. --grpc_python_out=. $(PROTOS)

demo: $(VENV)/.installed
	$(VENV)/bin/ledger demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -q
