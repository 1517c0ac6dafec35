#!/usr/bin/env bash
# cuda-check.sh: check gollm's CUDA backend (backend/cuda) on a GPU machine.
#
# The GPU machine has an NVIDIA driver but no Go, so the binaries are built
# first on a machine with Go, from the repository root:
#
#     scripts/cuda-check.sh build
#
# which runs
#
#     CGO_ENABLED=0 go test -c -o bin/cuda.test ./backend/cuda
#     CGO_ENABLED=0 go build -o bin/gollm ./cmd/gollm
#
# Then, on the GPU machine, from the repository root (with bin/ copied
# along; testdata/ is read from the working tree):
#
#     scripts/cuda-check.sh [OUT_DIR]
#
# It writes every log under OUT_DIR (default: $OUT, else ./cuda-check-out)
# and stays within BUDGET seconds in all (default 480), each part under
# `timeout`:
#
#   1. gpu-tests   bin/cuda.test -test.v: the GPU tests (each product kernel
#                  against the CPU bit for bit, quantizers, element-wise
#                  operations, attention, both fixture models' logits
#                  against the CPU backend, batch invariance) and the
#                  CPU-only tests.
#   2. synth       bin/gollm synth --preset qwen3-8b --type q6_k (6.7 GB in /tmp).
#   3. bench-go    BenchmarkQwen8B in the test binary: one-sequence
#                  generation (tg128), a 512-token prompt (pp512) and 64
#                  sequences decoding together (batch64), in tok/s.
#   4. bench-cli   bin/gollm bench --gpu cuda --json, if this gollm has --gpu.
#
# The exit status is that of the GPU tests; summary.txt lists each part.
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

if [ "${1:-}" = "build" ]; then
	set -e
	mkdir -p bin
	CGO_ENABLED=0 go test -c -o bin/cuda.test ./backend/cuda
	CGO_ENABLED=0 go build -o bin/gollm ./cmd/gollm
	ls -l bin/cuda.test bin/gollm
	exit 0
fi

out=${1:-${OUT:-./cuda-check-out}}
mkdir -p "$out"
budget=${BUDGET:-480}
deadline=$(( $(date +%s) + budget ))
model=${MODEL:-/tmp/gollm-q8b.gguf}
summary="$out/summary.txt"
: > "$summary"

say() { echo "$*" | tee -a "$summary"; }

# part NAME SECONDS CMD...: runs CMD with its output in $out/NAME.log,
# within SECONDS and what is left of the budget; prints the log's tail.
part() {
	local name=$1 limit=$2
	shift 2
	local left=$(( deadline - $(date +%s) - 5 ))
	if [ "$left" -lt "$limit" ]; then limit=$left; fi
	if [ "$limit" -le 10 ]; then
		say "== $name: skipped (budget spent)"
		return 124
	fi
	local t0=$(date +%s)
	timeout --kill-after=5 "$limit" "$@" > "$out/$name.log" 2>&1
	local rc=$?
	say "== $name: exit $rc after $(( $(date +%s) - t0 ))s (limit ${limit}s)"
	tail -n 60 "$out/$name.log"
	return $rc
}

for f in bin/cuda.test bin/gollm; do
	if [ ! -x "$f" ]; then
		say "missing $f: run 'scripts/cuda-check.sh build' on a machine with Go and copy bin/ along"
		exit 2
	fi
done

nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
head -n 15 "$out/nvidia-smi.txt"

# The test binary finds testdata/ through this (its compiled-in source
# path is the build machine's).
export GOLLM_TESTDATA="$here/testdata"

# 1. Tests. GOLLM_CUDA_SYNC is not set: the GPU tests open their backend
# with SyncEachLaunch, so a fault names its kernel.
part gpu-tests 200 bin/cuda.test -test.v -test.count 1 -test.timeout 195s
tests=$?
grep -E '^(--- |=== RUN|ok|FAIL|PASS)|gpu_test.go|largest|max gap|bit-identical' "$out/gpu-tests.log" > "$out/gpu-tests-summary.log" || true

# 2. The benchmark model (removed at the end if this script made it).
made=
if [ ! -s "$model" ]; then
	made=1
	part synth 120 bin/gollm synth --preset qwen3-8b --type q6_k --out "$model"
fi

# 3. The Go benchmark (always available).
if [ -s "$model" ]; then
	part bench-go 150 env GOLLM_CUDA_BENCH_MODEL="$model" \
		bin/cuda.test -test.run '^$' -test.bench BenchmarkQwen8B -test.benchtime 1x -test.v -test.timeout 145s

	# 4. gollm bench on the GPU, when the CLI has the flag.
	if bin/gollm bench --help 2>&1 | grep -q -- '-gpu string'; then
		part bench-cli 120 bin/gollm bench --gpu cuda --model "$model" --json --reps 1 --seqs 1,64 --no-sequential
	else
		say "== bench-cli: skipped (this gollm bench has no --gpu flag)"
	fi
fi

if [ -n "$made" ]; then rm -f "$model"; fi
say "== gpu tests exit status: $tests"
exit "$tests"
