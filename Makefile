# fastfeed: FAST/FIX market-data publisher, feed handler and distributor.
GO        ?= go
BIN       ?= bin/fastfeed
FUZZTIME  ?= 20s
BENCHTIME ?= 1s

.PHONY: all build test vet race bench fuzz demo clean deps soak cross

all: build

build:
	$(GO) build -o $(BIN) ./cmd/fastfeed

# Everything the tests need that a fresh machine may lack is installed here.
deps:
	@./scripts/deps.sh

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

# The fault scenarios (package scenario) write their table to bin/scenarios.md, the
# attacks (bus TestAttackTable) theirs to bin/attacks.md; both are printed after the
# tests. Then everything is built for macOS and Windows too.
test: deps vet
	@mkdir -p bin && rm -f bin/scenarios.md bin/attacks.md
	FASTFEED_SCENARIO_TABLE=$(CURDIR)/bin/scenarios.md FASTFEED_ATTACK_TABLE=$(CURDIR)/bin/attacks.md $(GO) test -race -count=1 -timeout 15m ./...
	@if [ -f bin/scenarios.md ]; then echo; echo "Fault scenarios (every handler's books against the publisher's ground truth):"; cat bin/scenarios.md; fi
	@if [ -f bin/attacks.md ]; then echo; echo "Attacks (what must happen, what did, with the counters that prove it):"; cat bin/attacks.md; fi
	@$(MAKE) --no-print-directory cross

# What needs no Linux socket builds on macOS and Windows; the shipped binary links no
# package testing.
cross:
	GOOS=darwin $(GO) build ./...
	GOOS=windows $(GO) build ./...
	@if $(GO) list -deps ./cmd/fastfeed | grep -qx testing; then echo "cmd/fastfeed links package testing"; exit 1; fi

# Longer local runs of the same scenarios: make soak SOAK=30m
SOAK ?= 10m
soak: build
	$(BIN) soak --duration $(SOAK)

bench:
	@./scripts/deps.sh --bench
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# Short, bounded runs of every fuzz target (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# The live demo: a publisher and a feed handler on loopback (in a private network
# namespace when the machine allows one), 1% receive loss injected to show recovery, books
# checked against the publisher's ground truth at the end.
demo: build
	$(BIN) demo --duration 15s

clean:
	rm -rf bin
