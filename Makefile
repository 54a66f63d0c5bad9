# bulkhead: build, test and demo entry points. Run `make test` as root: the end-to-end suite starts
# bulkheadd, which creates namespaces and cgroups for its spokes.

CARGO ?= cargo
VENV_PYTHON := build/venv/bin/python

# Install locations. DESTDIR is prepended to every path, for packaging or a container root.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
DATADIR ?= $(PREFIX)/share/bulkhead
DESTDIR ?=
INSTALL_BINARIES := bulkheadd bulkhead bulkhead-spoke bulkhead-app-notes bulkhead-app-calendar bulkhead-app-mail

.PHONY: build test test-setup demo bench clean install

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

# Measures spoke start, call latency, throughput, memory, egress through the proxy, and queries
# against a vanilla agent loop, and rewrites docs/benchmarks.md. Run it as root. bubblewrap, the
# cold-start baseline, is installed when bwrap is missing.
bench: build
	@command -v bwrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; }
	target/release/bulkhead-bench --out docs/benchmarks.md
	{ echo; target/release/bulkhead-bench --queries; } >> docs/benchmarks.md

# Installs the binaries, the systemd units, and $(SYSCONFDIR)/bulkhead/hub.toml with an empty
# apps.d. An existing hub.toml is never overwritten. The example manifests go to
# $(DATADIR)/examples: copy one into apps.d to enable it.
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DATADIR)/examples/apps.d
	install -m 0755 $(addprefix target/release/,$(INSTALL_BINARIES)) $(DESTDIR)$(BINDIR)/
	for unit in bulkhead.service bulkhead.socket; do \
		sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' config/$$unit > $(DESTDIR)$(UNITDIR)/$$unit.tmp \
			&& chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit.tmp && mv $(DESTDIR)$(UNITDIR)/$$unit.tmp $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	install -m 0644 config/apps.d/*.toml $(DESTDIR)$(DATADIR)/examples/apps.d/
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/bulkhead $(DESTDIR)$(SYSCONFDIR)/bulkhead/apps.d
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/bulkhead/hub.toml ]; then \
		echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/bulkhead/hub.toml; the new default is in $(DESTDIR)$(DATADIR)/hub.toml"; \
	else \
		install -m 0644 config/hub.toml $(DESTDIR)$(SYSCONFDIR)/bulkhead/hub.toml; \
	fi
	install -m 0644 config/hub.toml $(DESTDIR)$(DATADIR)/hub.toml

clean:
	$(CARGO) clean
	rm -rf build
