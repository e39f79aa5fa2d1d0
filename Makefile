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

.PHONY: all deps build build-runtime build-debug install demo test unit conformance conformance-runc spec-validation integration bench lint clean

all: build

deps:
	@./scripts/install-deps.sh

# The release shim is linked statically (glibc, crt-static): no ld.so and shared libc mapped into a
# process that stays resident beside every container. It is a --target build so that build scripts
# and proc-macros stay dynamic; its binary lands in target/TRIPLE/release.
HOST_TRIPLE = $(shell rustc -vV | sed -n 's/^host: //p')
SHIM_RELEASE = target/$(HOST_TRIPLE)/release/containerd-shim-berth-v2

# The runtime (berth) and the containerd shim (containerd-shim-berth-v2).
build: build-runtime
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release -p berth-shim --target $(HOST_TRIPLE)

build-runtime: deps
	$(CARGO) build --release -p berth

build-debug: deps
	$(CARGO) build -p berth -p berth-shim

# containerd finds containerd-shim-berth-v2 on its PATH (runtime type io.containerd.berth.v2).
install: build
	install -D -m 0755 target/release/berth $(DESTDIR)$(PREFIX)/bin/berth
	install -D -m 0755 $(SHIM_RELEASE) $(DESTDIR)$(PREFIX)/bin/containerd-shim-berth-v2

# Set everything up and run a container from the built-in default bundle.
demo: build-runtime
	./scripts/demo.sh

# Every test: unit tests, the conformance suite with berth and with runc, and the real managers
# (containerd 1.6 and, when found, 2.3, each with the berth shim and the runc shim; CRI; podman;
# Docker) with berth and with runc as the runtime.
test: lint unit conformance conformance-runc spec-validation integration

unit: deps
	$(CARGO) test -p berth -p berth-shim

conformance: build-debug
	RUNTIME=$(RUNTIME) $(CARGO) test -p conformance

conformance-runc: build-debug
	RUNTIME=runc $(CARGO) test -p conformance

# The OCI runtime-spec validation suite (../shared/suites, built once into ~/.cache/berth) against
# berth and runc side by side; fails on a check runc passes and berth fails, or on a berth not-ok not
# listed with its reason in conformance/spec-validation-known.txt. Skips visibly without ../shared.
spec-validation: build-debug
	python3 scripts/spec-validation.py --berth $(CURDIR)/target/debug/berth

integration: build-debug
	INTEG_RUNTIME=$(CURDIR)/target/debug/berth INTEG_BERTH_SHIM=$(CURDIR)/target/debug/containerd-shim-berth-v2 \
		CONTAINERD_BIN_DIR=$(CONTAINERD_BIN_DIR) $(CARGO) test -p integration
	INTEG_RUNTIME=runc INTEG_BERTH_SHIM=$(CURDIR)/target/debug/containerd-shim-berth-v2 \
		CONTAINERD_BIN_DIR=$(CONTAINERD_BIN_DIR) $(CARGO) test -p integration

bench: build
	INTEG_BERTH_SHIM=$(CURDIR)/$(SHIM_RELEASE) CONTAINERD_BIN_DIR=$(CONTAINERD_BIN_DIR) ./bench/run.sh

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
