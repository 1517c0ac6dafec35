# gollm: common tasks. Everything builds and tests with CGO_ENABLED=0.
GO ?= go
export CGO_ENABLED ?= 0

.PHONY: build test race bench lint fuzz bench-compare serve-compare clean

build:
	$(GO) build -o bin/gollm ./cmd/gollm

test:
	$(GO) test ./...

# The race detector needs cgo; it runs the concurrent-sessions tests.
race:
	CGO_ENABLED=1 $(GO) test -race . ./batch ./kvcache ./sample ./kernels ./server

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./kernels ./tokenizer ./sample ./tensor

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz:
	$(GO) test -run '^$$' -fuzz=FuzzOpen -fuzztime=2m ./gguf
	$(GO) test -run '^$$' -fuzz=FuzzRequest -fuzztime=1m ./server
	$(GO) test -run '^$$' -fuzz=FuzzToolParser -fuzztime=1m ./server

# Side by side with node-llama-cpp 3.21.1 (installs it into a temporary folder).
bench-compare:
	./bench/compare/run.sh

# The HTTP server against the library, same prompts (synthesizes Qwen3-0.6B).
serve-compare:
	./bench/serve-compare.sh

clean:
	rm -rf bin
