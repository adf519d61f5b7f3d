# tl — build, test and install the four commands.
# make            build into ./bin
# make demo       a relay on the in-memory default with events flowing through it
# make test       go vet and every test under -race (what CI runs)
# make cross      build and vet the commands for every platform in CROSS
# make bench      the benchmark table (see README, Performance)
# make soak       kill -9 relays and Redis at random for DURATION per backing, then check every line

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(DESTDIR)$(PREFIX)/bin
MANDIR   = $(DESTDIR)$(PREFIX)/share/man
BASHDIR  = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHDIR   = $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISHDIR  = $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
GO      ?= go
# The version is the nearest tag (v1.2.0, v1.2.0-3-gabc1234); without a tag
# it is "devel", and the commit (with -dirty for local changes) says the rest,
# so that --version never shows the hash twice.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git describe --always --dirty --exclude='*' 2>/dev/null || echo unknown)
LDFLAGS  = -s -w -X github.com/tl-sh/tl/lib/cli.version=$(VERSION) -X github.com/tl-sh/tl/lib/cli.commit=$(COMMIT)
CMDS     = tl-relay tl-tail tl-post tl-fmt
# Where build puts the binaries; the install test builds elsewhere so that
# make test never overwrites the user's ./bin.
BUILDDIR ?= bin
PAGES1   = $(wildcard man/*.1)
PAGES7   = $(wildcard man/*.7)
# staticcheck, pinned (the newest release that builds with our Go), run with
# go run so CI needs no install step and the module adds no dependency.
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test test-short soak bench bench-quick lint cross man install uninstall clean demo fuzz completions

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BUILDDIR)/ $(addprefix ./cmd/,$(CMDS))

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short ./...

# The soak (lib/e2e/soak_test.go): each backing (memory, --data-dir,
# --broker) runs DURATION under random faults, then every publisher's 202
# and every subscriber's line is checked against lib/internal/invariant.
# make test runs it for 20 s per backing (those in soakShortBackings);
# make soak runs every backing. SEED=N replays a fault schedule.
DURATION ?= 5m
SEED     ?= 0
soak:
	$(GO) test -race -count=1 -timeout 0 -run 'TestSoak' -v ./lib/e2e -soak $(DURATION) -soak-seed $(SEED)

# scripts/bench.sh runs each scripts/bench-*.sh, which prints its part of
# the results, then a summary table of the headline figures against the
# goals (scripts/benchsum).
bench: build
	@bash scripts/bench.sh

bench-quick: build
	@QUICK=1 bash scripts/bench.sh

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

# The commands build for every platform Go serves (disklog locks its
# directory per platform; the epoll hub is Linux's, the goroutine engine
# serves elsewhere). Only the four commands are built, into /dev/null, and
# vetted with the packages that are split by platform, so this stays fast.
CROSS     ?= linux/amd64 darwin/amd64 darwin/arm64 windows/amd64 freebsd/amd64
CROSS_VET ?= ./cmd/... ./lib/internal/disklog/... ./scripts/...
cross:
	@set -e; for p in $(CROSS); do \
		echo "cross: $$p"; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null $(addprefix ./cmd/,$(CMDS)); \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet $(CROSS_VET); \
	done

# Briefly run every native fuzz target (CI runs this too).
fuzz:
	@bash scripts/fuzz.sh

demo: build
	@TL_BIN=$(BUILDDIR) bash scripts/demo.sh

# Regenerate completions/ from the commands' --help (a test checks it is
# up to date).
completions: build
	$(GO) run ./scripts/completions -bin $(BUILDDIR) -out completions

install: build
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man7 $(BASHDIR) $(ZSHDIR) $(FISHDIR)
	for c in $(CMDS); do install -m 0644 completions/tl.bash $(BASHDIR)/$$c; done
	install -m 0644 completions/_tl $(ZSHDIR)/_tl
	install -m 0644 $(addprefix completions/,$(addsuffix .fish,$(CMDS))) $(FISHDIR)/
	install -m 0755 $(addprefix $(BUILDDIR)/,$(CMDS)) $(BINDIR)/
	$(if $(PAGES1),install -m 0644 $(PAGES1) $(MANDIR)/man1/)
	$(if $(PAGES7),install -m 0644 $(PAGES7) $(MANDIR)/man7/)

uninstall:
	rm -f $(addprefix $(BINDIR)/,$(CMDS)) $(addprefix $(BASHDIR)/,$(CMDS)) $(ZSHDIR)/_tl
	rm -f $(addprefix $(FISHDIR)/,$(addsuffix .fish,$(CMDS)))
	rm -f $(addprefix $(MANDIR)/man1/,$(notdir $(PAGES1))) $(addprefix $(MANDIR)/man7/,$(notdir $(PAGES7)))

clean:
	rm -rf bin
