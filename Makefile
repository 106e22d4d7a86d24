# berth: `make demo` and `make test` work on a fresh Debian machine as root.
SHELL := /bin/bash
NODE ?= node

.PHONY: all deps build demo test unit integration security clients typecheck bench clean

all: build

deps:
	@./scripts/setup.sh

build: deps
	@$(NODE) scripts/build.mjs

typecheck: deps
	@npx tsc --noEmit -p .

demo: build
	@./scripts/demo.sh

unit: build
	$(NODE) --import tsx --test --test-concurrency=1 test/unit/*.test.ts

integration: build
	$(NODE) --import tsx --test --test-concurrency=1 --test-timeout=600000 test/integration/*.test.ts

security: build
	$(NODE) --import tsx --test --test-concurrency=1 --test-timeout=600000 test/security/*.test.ts

# The real clients (docker CLI, python3-docker, docker-compose, dockerode, testcontainers) against berthd;
# writes the README's "Clients tested" table from the results.
clients: build
	$(NODE) scripts/client-table.mjs

test: build typecheck
	$(NODE) --import tsx --test --test-concurrency=1 --test-timeout=600000 test/unit/*.test.ts test/integration/*.test.ts test/security/*.test.ts test/clients/*.test.ts

bench: build
	@./bench/run-latency

clean:
	rm -rf bin/berth bin/berth.cjs bin/berthd bin/berthd.map bin/berth-attach bin/berth-mounter bin/berth-layer-worker.mjs bin/berth-compose.cjs bin/berth-registry.cjs bin/berth-kube.cjs dist
