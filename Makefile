# taskmanager: build, run and test. `make` alone builds bin/taskmanager; `make help`
# lists every target, from the `## name: text` comment above it (keep one on each).

SHELL := /bin/bash
.DEFAULT_GOAL := build

GO         ?= go
BIN        := bin/taskmanager
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Port of the local development cluster in .data/pg (also read by scripts/run.sh).
PGPORT_DEV ?= 54329
export PGPORT_DEV

.PHONY: help build run test lint vet bench db-start db-stop clean distclean smoke contract client cluster cluster-stop soak

## help: list the targets and what they do
help:
	@awk 'sub(/^## /, "") { i = index($$0, ": "); printf "  %-12s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2) }' $(MAKEFILE_LIST)

## build: compile bin/taskmanager
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/taskmanager

## run: build, start the local PostgreSQL (unless DATABASE_URL is set), migrate, serve on 127.0.0.1:8000; LISTEN_ADDR=0.0.0.0:8000 make run opens it, registration included, to the network
run:
	VERSION=$(VERSION) bash scripts/run.sh

## test: go vet, lint, go test -race against a throwaway PostgreSQL, then the smoke and contract runs
test:
	bash scripts/test.sh

## contract: Portman contract tests generated from api/openapi.yaml, every operation, run with newman against a throwaway server and PostgreSQL
contract:
	bash scripts/contract.sh

## client: regenerate the TypeScript types api/client/schema.d.ts from api/openapi.yaml (openapi-typescript)
client:
	bash scripts/client.sh

## smoke: run the Postman collection (api/taskmanager.postman_collection.json) with newman against a throwaway server and PostgreSQL
smoke:
	bash scripts/smoke.sh

## lint: staticcheck (version pinned in scripts/test.sh), redocly lint and portable patterns of api/openapi.yaml, TypeScript types up to date
lint:
	bash scripts/test.sh lint

## vet: go vet
vet:
	bash scripts/test.sh vet

## bench: Go micro-benchmarks with allocations, then wrk against a throwaway server (docs/BENCHMARKS.md)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
	bash scripts/bench.sh

## cluster: three instances on loopback behind haproxy (deploy/haproxy.cfg) with Redis and the local PostgreSQL, haproxy in the foreground; prints the address (CLUSTER_ADDR, default 127.0.0.1:8080)
cluster:
	VERSION=$(VERSION) bash scripts/cluster.sh start

## cluster-stop: stop what make cluster started
cluster-stop:
	bash scripts/cluster.sh stop

## soak: 10 minutes of mixed traffic (about 200 requests/s) against a fresh make cluster, sampling each instance's RSS and goroutines every minute (SOAK_DURATION, SOAK_EVERY); not part of make test
soak:
	VERSION=$(VERSION) bash scripts/soak.sh

## db-start: start the local development cluster in .data/pg and create the taskmanager database
db-start:
	bash scripts/pg.sh start .data/pg $(PGPORT_DEV)
	bash scripts/pg.sh createdb $(PGPORT_DEV) taskmanager

## db-stop: stop the local development cluster
db-stop:
	bash scripts/pg.sh stop .data/pg

## clean: remove bin/, stop the local cluster and remove .data/ (database and generated JWT key); keeps node_modules/ and .artifacts/
clean:
	bash scripts/pg.sh stop .data/pg
	rm -rf bin .data
	@echo "make clean: kept node_modules/ (npm packages for lint and smoke) and .artifacts/ (test screenshots); make distclean removes them too"

## distclean: what clean does, and remove node_modules/ and .artifacts/ too (a .env stays)
distclean:
	bash scripts/pg.sh stop .data/pg
	rm -rf bin .data node_modules .artifacts
