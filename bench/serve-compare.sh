#!/usr/bin/env bash
# What the HTTP server costs: N concurrent streaming clients of
# `gollm serve`'s handler against the same prompts through the library
# directly, alternating rounds, same tokens (greedy). Prints tokens/s of
# both and the overhead (server.TestServeOverhead).
#
#   bench/serve-compare.sh [MODEL] [CLIENTS] [TOKENS] [ROUNDS]
#
# Without MODEL it synthesizes qwen3-0.6b Q6_K once into a temporary
# folder (random weights: speed is what a real 0.6B model's would be).
# Defaults: 8 clients, 32 tokens each, 3 rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=${1:-}
if [ -z "$model" ]; then
  go run ./cmd/gollm synth --out "$tmp/m.gguf" --preset qwen3-0.6b --type q6_k >/dev/null
  model=$tmp/m.gguf
fi
GOLLM_BENCH_MODEL=$(realpath "$model") GOLLM_BENCH_CLIENTS=${2:-8} GOLLM_BENCH_TOKENS=${3:-32} GOLLM_BENCH_ROUNDS=${4:-3} \
  go test ./server -run '^TestServeOverhead$' -count 1 -v -timeout 60m | grep -E 'round|overhead|FAIL|ok'
