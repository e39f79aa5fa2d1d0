# berth: build, install, demo, tests, conformance, benchmarks, lint.
# Everything installs what it needs first (scripts/install-deps.sh: apt-get and, if missing, rustup).

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
PREFIX ?= /usr/local
# The runtime the conformance suite drives (berth by default; `make conformance RUNTIME=runc`).
RUNTIME ?= $(CURDIR)/target/debug/berth
# A second containerd generation for the integration tests, when present.
CONTAINERD_BIN_DIR ?= $(wildcard $(CURDIR)/../shared/bin/containerd-2.3.4)

.PHONY: all deps build build-debug install demo test unit conformance conformance-runc integration bench lint clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	$(CARGO) build --release -p berth

build-debug: deps
	$(CARGO) build -p berth

install: build
	install -D -m 0755 target/release/berth $(DESTDIR)$(PREFIX)/bin/berth

# Set everything up and run a container from the built-in default bundle.
demo: build
	./scripts/demo.sh

# Every test: unit tests, the conformance suite with berth and with runc, and the real managers
# (containerd 1.6 and, when found, 2.3; CRI; podman; Docker) with berth and with runc as the runtime.
test: lint unit conformance conformance-runc integration

unit: deps
	$(CARGO) test -p berth

conformance: build-debug
	RUNTIME=$(RUNTIME) $(CARGO) test -p conformance

conformance-runc: build-debug
	RUNTIME=runc $(CARGO) test -p conformance

integration: build-debug
	INTEG_RUNTIME=$(CURDIR)/target/debug/berth CONTAINERD_BIN_DIR=$(CONTAINERD_BIN_DIR) $(CARGO) test -p integration
	INTEG_RUNTIME=runc CONTAINERD_BIN_DIR=$(CONTAINERD_BIN_DIR) $(CARGO) test -p integration

bench: build
	./bench/run.sh

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
