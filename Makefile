# crisp — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)

SWIFT ?= swift
RELEASE_BIN = .build/release
# One section per function, so that lld can lay out crispd's start-up code together
# (scripts/crispd.order); every release build uses the same flags, or SwiftPM rebuilds everything.
export RELEASE_FLAGS := -c release -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections

.PHONY: all deps build build-debug pause run test bench stress generate docs clean install uninstall

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(RELEASE_FLAGS) --static-swift-stdlib --product crispd
	$(SWIFT) build $(RELEASE_FLAGS) --static-swift-stdlib --product crispctl
	$(MAKE) pause DIR=.build/release

# crisp's C helpers, static, next to crispd: the pause program and crisp-pinns. SwiftPM would link
# them against the Swift runtime, which costs crisp-pinns 2-3 ms of loading on every pod; the
# SwiftPM-built crisp-pinns (same source) is replaced here.
pause:
	mkdir -p $(or $(DIR),.build/debug)
	cc -static -O2 -Wall -o $(or $(DIR),.build/debug)/crisp-pause cmd/crisp-pause/pause.c
	cc -static -O2 -Wall -Wno-format-truncation -o $(or $(DIR),.build/debug)/crisp-pinns Sources/crisp-pinns/main.c

build-debug: deps
	$(SWIFT) build --build-tests

# Starts crispd with the built-in defaults (plus /etc/crisp/crisp.conf if present), in the foreground.
run: build
	$(RELEASE_BIN)/crispd install-cni-config
	$(RELEASE_BIN)/crispd

# Builds everything and runs every test (unit and integration; integration tests need root).
test: deps
	$(SWIFT) build --build-tests
	@# The install test lays crisp out with swift-argument-parser's man page generator.
	$(SWIFT) build --product generate-manual
	$(MAKE) pause DIR=.build/debug
	@# crisp-pinns (like `ip netns`) makes /run/netns a shared mount point the first time a pod
	@# network namespace is pinned; the tests leave the host as they found it.
	@was_mounted=$$(mountpoint -q /run/netns && echo yes || echo no); \
	$(SWIFT) test --skip-build 2>&1 | tee .build/test-output.txt; rc=$${PIPESTATUS[0]}; \
	if [ "$$was_mounted" = no ] && mountpoint -q /run/netns && [ -z "$$(ls -A /run/netns)" ]; then umount /run/netns; fi; \
	exit $$rc

# Benchmarks: every scripts/bench-*.sh, each prints a table with the ratio to its target.
bench: deps
	@for b in scripts/bench-*.sh; do [ -e "$$b" ] || continue; echo "== $$b"; bash "$$b" || exit 1; done

# The reliability suite at full size against the release crispd (issue 16): 200 kill -9 cycles
# under a random workload, each followed by the store check and the leak checks; 100 pods with 2
# containers at once and 1,000 pod cycles with crispd's memory, descriptors and threads sampled;
# 8 clients racing image operations for 2 minutes; mutated and hostile requests to every RPC;
# critest's 2-parallel benchmark 10 times in a row.
# Each scenario prints one line with its figures. `make test` runs them at their quick size.
stress: build
	$(SWIFT) build --build-tests
	$(MAKE) pause DIR=.build/debug
	CRISP_STRESS=full CRISPD_BIN=$(CURDIR)/.build/release/crispd $(SWIFT) test --skip-build --filter 'IntegrationTests.Stress'
	@# critest's 2-parallel benchmark 10 times against one crispd with backtraces on (issue 12's
	@# SIGSEGV hunt); skipped with a reason where critest is not built.
	LOOPS=10 scripts/bench-critest.sh

# Regenerates Sources/CRIAPI from Protos/ (installs protoc, builds the two plugins). CI never runs it.
generate:
	scripts/generate.sh

# Rewrites the configuration reference in README.md from the config schema.
docs:
	$(SWIFT) build --product crispd
	scripts/update-readme-reference.sh .build/debug/crispd

# Installs crisp as a service: binaries, helpers, the systemd unit, a commented default
# configuration (kept when one exists), shell completions and man pages. PREFIX, DESTDIR and
# SYSCONFDIR as usual; BUILD=debug installs the debug build (what the tests use).
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BUILD ?= release
BINDIR = $(PREFIX)/bin
LIBEXECDIR = $(PREFIX)/libexec/crisp
UNITDIR ?= $(PREFIX)/lib/systemd/system
SHAREDIR = $(PREFIX)/share
INSTALLED = $(DESTDIR)$(BINDIR)/crispd $(DESTDIR)$(BINDIR)/crispctl $(DESTDIR)$(LIBEXECDIR)/crisp-pinns \
	$(DESTDIR)$(LIBEXECDIR)/crisp-pause $(DESTDIR)$(UNITDIR)/crispd.service \
	$(foreach t,crispd crispctl,$(DESTDIR)$(SHAREDIR)/bash-completion/completions/$(t) \
	  $(DESTDIR)$(SHAREDIR)/zsh/site-functions/_$(t) $(DESTDIR)$(SHAREDIR)/fish/vendor_completions.d/$(t).fish)

install: $(if $(filter release,$(BUILD)),build,build-debug pause-debug)
	BIN=.build/$(BUILD) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) SYSCONFDIR=$(SYSCONFDIR) UNITDIR=$(UNITDIR) scripts/install.sh

uninstall:
	rm -f $(INSTALLED)
	rm -f $(DESTDIR)$(SHAREDIR)/man/man1/crispd*.1 $(DESTDIR)$(SHAREDIR)/man/man1/crispctl*.1
	-rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null
	@# The configuration is the operator's: removed only while it is still the generated default.
	@if [ -f $(DESTDIR)$(SYSCONFDIR)/crisp/crisp.conf ] && cmp -s $(DESTDIR)$(SYSCONFDIR)/crisp/crisp.conf $(DESTDIR)$(SYSCONFDIR)/crisp/.crisp.conf.default; then \
	  rm -f $(DESTDIR)$(SYSCONFDIR)/crisp/crisp.conf; else echo "kept $(DESTDIR)$(SYSCONFDIR)/crisp/crisp.conf (changed)"; fi
	rm -f $(DESTDIR)$(SYSCONFDIR)/crisp/.crisp.conf.default
	-rmdir $(DESTDIR)$(SYSCONFDIR)/crisp 2>/dev/null

pause-debug:
	$(MAKE) pause DIR=.build/debug

clean:
	rm -rf .build
