# bulkhead: build, test and demo entry points. Run `make test` as root: the end-to-end suite starts
# bulkheadd, which creates namespaces and cgroups for its spokes.

CARGO ?= cargo
VENV_PYTHON := build/venv/bin/python

.PHONY: build test test-setup demo bench clean

build:
	$(CARGO) build --release --workspace

# Installs the suite's Python packages, gRPC stubs and third-party MCP apps under build/.
test-setup:
	bash tests/setup.sh

test: build test-setup
	$(CARGO) test --release --workspace
	$(VENV_PYTHON) -m pytest tests/ -v

demo: build
	bash tests/demo.sh

# Measures spoke start, call latency, throughput and memory, and rewrites docs/benchmarks.md. Run
# it as root. bubblewrap, the cold-start baseline, is installed when bwrap is missing.
bench: build
	@command -v bwrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; }
	target/release/bulkhead-bench --out docs/benchmarks.md

clean:
	$(CARGO) clean
	rm -rf build
