# costsync: `make run` runs the pipeline on the local stack, `make test` runs every test.
# Both install what they need: Go modules (go build fetches them), the npm packages
# pinned in tools/npm/package-lock.json, and a generated TLS certificate (.stack/certs).

GO      ?= go
NPM_DIR := tools/npm
STAMP   := $(NPM_DIR)/node_modules/.installed
CMDS    := handler devhost costsim localrun chaos costsync reconcile

.PHONY: all deps build run test unit bench chaos reconcile package clean chromium

all: build

deps: $(STAMP)

$(STAMP): $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	cd $(NPM_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build:
	$(GO) build -o bin/ $(addprefix ./cmd/,$(CMDS))

# The full pipeline on the local stack: 7 days, 3 simulated scopes, a summary.
run: deps build
	./bin/localrun

# Every test: vet, unit and integration tests (the local stack's tests fail,
# not skip, under CI), and the parser's and payload decoder's fuzz targets.
test: deps build chromium
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime 30s ./shared/costcsv/
	$(GO) test -run '^$$' -fuzz '^FuzzCSVScanner$$' -fuzztime 10s ./shared/costcsv/
	$(GO) test -run '^$$' -fuzz '^FuzzUsageReader$$' -fuzztime 10s ./shared/costcsv/
	$(GO) test -run '^$$' -fuzz '^FuzzString$$' -fuzztime 10s ./shared/invocation/

# The coverage page test renders the page in headless Chromium: Debian's
# package, installed here when missing (CI runs as root with apt reachable).
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y chromium || { apt-get update && apt-get install -y chromium; } || \
	  { echo "make: could not install Debian's chromium (it needs root and apt); the coverage page test needs $(CHROMIUM)" >&2; exit 1; }; }

# Unit tests only (no local stack needed).
unit:
	$(GO) test -count=1 -short ./...

# Every fault scenario on the local stack, one line each:
# scenario NAME: windows=W docs=D expected=E totals=exact
chaos: deps build
	./bin/chaos

# One simulated month of one scope through every source (Cost Details,
# exports, usage details, usage aggregates, Query), one line each:
# source NAME: days=N totals=exact
reconcile: deps build
	./bin/reconcile

# Benchmarks: each package with benchmarks adds itself to BENCH_PKGS.
# costcsv: throughput and peak memory on a generated 1 GiB EA file, next to a
# bare encoding/csv read of the same file.
BENCH_PKGS := ./shared/costcsv/
# The store's writer next to a naive one, through a 5 ms proxy in front of
# the Cosmos emulator (it starts the emulator itself).
BENCH_PKGS += ./shared/store/

# -p 1: one package at a time, so that neither measures the other's load.
bench: deps build
	$(GO) test -p 1 -run '^$$' -bench . -benchmem $(BENCH_PKGS)

# A zip-deployable folder: host.json, the function folders at the root, and
# the linux/amd64 handler that host.json names.
# DIST may name another folder (the package test builds into a temporary one).
DIST ?= dist
# The FinOps toolkit's Services.csv (the team's copy, read in place): the
# handler maps ConsumedService and resource type to the FOCUS service with it.
SERVICES_CSV ?= ../shared/testdata/real/finops-toolkit/open-data/Services.csv

package:
	rm -rf $(DIST) && mkdir -p $(DIST)
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -o $(DIST)/handler ./cmd/handler
	cp host.json $(DIST)/
	for d in functions/*/; do cp -r "$$d" $(DIST)/; done
	@if [ -f "$(SERVICES_CSV)" ]; then mkdir -p $(DIST)/open-data && cp "$(SERVICES_CSV)" $(DIST)/open-data/; \
	else echo "make package: no $(SERVICES_CSV): the FOCUS service name and category stay empty (COSTSYNC_SERVICES_FILE)"; fi

clean:
	rm -rf bin dist .stack
