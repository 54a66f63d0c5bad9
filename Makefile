# bulkhead: build, test and demo entry points. Run `make test` as root: the end-to-end suite starts
# bulkheadd, which creates namespaces and cgroups for its spokes.

CARGO ?= cargo
VENV_PYTHON := build/venv/bin/python

.PHONY: build test test-setup demo clean

build:
	$(CARGO) build --release --workspace

# Installs the suite's Python packages, gRPC stubs and third-party MCP apps under build/.
test-setup:
	tests/setup.sh

test: build test-setup
	$(CARGO) test --release --workspace
	$(VENV_PYTHON) -m pytest tests/ -v

demo: build
	tests/demo.sh

clean:
	$(CARGO) clean
	rm -rf build
