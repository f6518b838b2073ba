# openmyst developer targets. `make test` is the one command that runs the
# whole test suite (CI's .ci/run calls exactly it after installing packages).

GO      ?= go
BIN     ?= bin/myst
PKGS    ?= ./...

.PHONY: all build deb test test-short lint generate generate-check bench fuzz postgres demo devnet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/myst

## deb: the openmyst .deb (nfpm, pinned in packaging/nfpm/go.mod) in bin/;
## MYST_DEB_VERSION sets its version (default 0.0.0~dev).
deb:
	bash scripts/deb.sh bin

## test: lint, generated-code check, PostgreSQL for the hermes store suite,
## and every Go test with the race detector.
test:
	bash scripts/test.sh

## test-short: unit tests only, no race detector, no lint (fast inner loop).
test-short:
	$(GO) test -short -count=1 $(PKGS)

lint:
	bash scripts/lint.sh

generate:
	$(GO) generate ./...

## generate-check: fails when `go generate` changes committed files.
generate-check:
	bash scripts/generate-check.sh

## postgres: start a throwaway PostgreSQL on loopback for the hermes store
## tests and print the export line for MYST_TEST_POSTGRES_DSN.
postgres:
	bash scripts/postgres-test.sh

bench:
	bash scripts/bench.sh

## fuzz: run every fuzz target for FUZZTIME each (default 10s).
fuzz:
	bash scripts/fuzz.sh

demo: build
	$(BIN) demo

devnet: build
	$(BIN) devnet

clean:
	rm -rf bin
