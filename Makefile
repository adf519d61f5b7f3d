# tl — build, test and install the four commands.
# make            build into ./bin
# make demo       a relay on the in-memory default with events flowing through it
# make test       go vet and every test under -race (what CI runs)
# make bench      the benchmark table (see README, Performance)

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(DESTDIR)$(PREFIX)/bin
MANDIR   = $(DESTDIR)$(PREFIX)/share/man
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  = -s -w -X github.com/tl-sh/tl/lib/cli.version=$(VERSION) -X github.com/tl-sh/tl/lib/cli.commit=$(COMMIT)
CMDS     = tl-relay tl-tail tl-post tl-fmt
PAGES1   = $(wildcard man/*.1)
PAGES7   = $(wildcard man/*.7)
# staticcheck, pinned (the newest release that builds with our Go), run with
# go run so CI needs no install step and the module adds no dependency.
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test test-short bench bench-quick lint man install uninstall clean demo fuzz

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(CMDS))

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short ./...

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

# Briefly run every native fuzz target (CI runs this too).
fuzz:
	@bash scripts/fuzz.sh

demo: build
	@bash scripts/demo.sh

install: build
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man7
	install -m 0755 $(addprefix bin/,$(CMDS)) $(BINDIR)/
	$(if $(PAGES1),install -m 0644 $(PAGES1) $(MANDIR)/man1/)
	$(if $(PAGES7),install -m 0644 $(PAGES7) $(MANDIR)/man7/)

uninstall:
	rm -f $(addprefix $(BINDIR)/,$(CMDS))
	rm -f $(addprefix $(MANDIR)/man1/,$(notdir $(PAGES1))) $(addprefix $(MANDIR)/man7/,$(notdir $(PAGES7)))

clean:
	rm -rf bin
