# fastfeed: FAST/FIX market-data publisher, feed handler and distributor.
GO        ?= go
BIN       ?= bin/fastfeed
FUZZTIME  ?= 20s
BENCHTIME ?= 1s

.PHONY: all build test vet race bench fuzz demo clean deps

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

test: deps vet
	$(GO) test -race -count=1 -timeout 15m ./...

bench:
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

demo: build
	@echo "== decoding fixtures/sample.seq32 (one datagram of each of fastfeed's templates)"
	$(BIN) decode -t fixtures/templates.xml --framing seq32 fixtures/sample.seq32
	@echo "== summary"
	$(BIN) decode -t fixtures/templates.xml --framing seq32 --summary fixtures/sample.seq32

clean:
	rm -rf bin
