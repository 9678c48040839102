# Hive resilience. `make run` starts a node with sim models on an embedded
# NATS server; `make test` runs every test.

GO       ?= go
BIN      := bin
VERSION  := 0.1.0-dev+$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION)
PROTOC   ?= protoc
PROTO_INCLUDE ?= /usr/include
RUN_ARGS ?=

.PHONY: all build run start-monitoring test test-short proto proto-check lint bench clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/hive-node
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/hive-node ./cmd/hive-node

run: build ## start a node: sim models, embedded NATS on 127.0.0.1:4222, HTTP on 127.0.0.1:8080
	$(BIN)/hive-node serve $(RUN_ARGS)

start-monitoring: run ## the proposal's name for run

.PHONY: health-check
health-check: build ## every node's models in one table (NATS_URL=nats://127.0.0.1:4222); exit 1 when one cannot take traffic or a node drains
	$(BIN)/hive-node health-check --nats-url $(or $(NATS_URL),nats://127.0.0.1:4222)

.PHONY: dashboard
dashboard: build ## print the dashboard's URL and check that it answers (HTTP_URL=http://127.0.0.1:8080)
	$(BIN)/hive-node dashboard --http-url $(or $(HTTP_URL),http://127.0.0.1:8080)

.PHONY: nats-server test-failover chaos
nats-server: ## build bin/nats-server (the version go.mod pins), for chaos scenarios of several nodes
	$(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2

test-failover: build ## run the single-model-failure chaos scenario (about 45 s) and print its report (CHAOS_ARGS=... adds flags)
	$(GO) build -o $(BIN)/chaos ./cmd/chaos
	$(BIN)/chaos run scenarios/single-model-failure.yml $(CHAOS_ARGS)

chaos: build nats-server ## run every chaos scenario of scenarios/ (about 22 minutes); fails when one does
	$(GO) build -o $(BIN)/chaos ./cmd/chaos
	@failed=""; for f in scenarios/*.yml; do \
		echo "== $$f"; \
		$(BIN)/chaos run $$f $(CHAOS_ARGS) || failed="$$failed $$(basename $$f .yml)"; \
		echo; \
	done; \
	if [ -n "$$failed" ]; then echo "chaos: failed:$$failed"; exit 1; fi; \
	echo "chaos: every scenario passed"

test: proto-check lint ## every test, with the race detector
	$(GO) test -race -count=1 -timeout 20m ./...

test-short: ## the tests without the race detector, for a quick loop
	$(GO) test -count=1 ./...

proto: ## regenerate messages/hive.pb.go from messages/hive.proto
	@command -v $(PROTOC) >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler libprotobuf-dev"; exit 1; }
	$(PROTOC) -I messages -I $(PROTO_INCLUDE) --plugin=protoc-gen-go="$$($(GO) tool -n protoc-gen-go)" \
		--go_out=messages --go_opt=paths=source_relative messages/hive.proto

proto-check: ## fail when messages/hive.pb.go is stale
	@command -v $(PROTOC) >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler libprotobuf-dev"; exit 1; }
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	$(PROTOC) -I messages -I $(PROTO_INCLUDE) --plugin=protoc-gen-go="$$($(GO) tool -n protoc-gen-go)" \
		--go_out=$$tmp --go_opt=paths=source_relative messages/hive.proto && \
	if ! diff -q $$tmp/hive.pb.go messages/hive.pb.go >/dev/null; then \
		echo "messages/hive.pb.go is stale: run 'make proto' and commit it"; diff $$tmp/hive.pb.go messages/hive.pb.go | head -20; exit 1; \
	else echo "messages/hive.pb.go is up to date"; fi

lint: ## go vet and a gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

bench: ## benchmarks (figures, never assertions)
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-gateway
bench-gateway: ## the HTTP gateway in front of a local mock OpenAI upstream, with wrk (about 3 minutes)
	GO=$(GO) bash bench/gateway.sh

.PHONY: bench-soak
bench-soak: ## 10 minutes at 16 clients through the gateway; the node's resident memory after 1 and 10 minutes
	GO=$(GO) BENCH_SOAK=600 bash bench/gateway.sh

clean: ## remove build output and the embedded server's data
	rm -rf $(BIN) data
