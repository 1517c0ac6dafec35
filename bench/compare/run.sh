#!/usr/bin/env bash
# run.sh: gollm and node-llama-cpp side by side on the same model file
# (make bench-compare).
#
#   bench/compare/run.sh [--threads N] [--reps N] [--keep]
#
# 1. builds gollm (CGO_ENABLED=0) and writes the benchmark model with
#    `gollm synth --preset qwen3-0.6b --type q6_k` (random weights, ~490 MB)
#    into a temporary folder;
# 2. installs node-llama-cpp 3.21.1 from the npm registry into that folder,
#    with only its prebuilt CPU binary package (no GPU package, no build from
#    source, no postinstall download);
# 3. runs `gollm bench --json` and nlc-bench.mjs (same prompts, same thread
#    count, same batch sizes) one after the other;
# 4. prints a table with the ratios gollm / node-llama-cpp and writes all the
#    figures to one JSON file ($OUT, default bench/compare/last-run.json).
#
# Environment (flags win):
#   THREADS      threads for both engines (default 2)
#   REPS         repetitions of each measurement; medians are compared (default 3)
#   SEQS         batched sequence counts (default 1,2,4,8)
#   PP TG PROMPT_LEN BATCH_TG BATCH_SIZE   as in `gollm bench` (512 128 128 64 512)
#   OUT          where to write the JSON (default bench/compare/last-run.json)
#   WORK         folder for the build, model and install (default: a new
#                temporary folder, removed at the end unless --keep/KEEP=1)
#   NLC_DIR      an existing node-llama-cpp install to reuse (a folder with
#                node_modules/node-llama-cpp); default: install into WORK
#   MODEL        an existing model file to use instead of synthesizing one
#   NLC_VERSION  node-llama-cpp version (default 3.21.1)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

THREADS=${THREADS:-2}
REPS=${REPS:-3}
SEQS=${SEQS:-1,2,4,8}
PP=${PP:-512}
TG=${TG:-128}
PROMPT_LEN=${PROMPT_LEN:-128}
BATCH_TG=${BATCH_TG:-64}
BATCH_SIZE=${BATCH_SIZE:-512}
OUT=${OUT:-$here/last-run.json}
NLC_VERSION=${NLC_VERSION:-3.21.1}
KEEP=${KEEP:-0}

while [ $# -gt 0 ]; do
	case "$1" in
	--threads) THREADS=$2; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

for tool in go node npm; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done

if [ -z "${WORK:-}" ]; then
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/gollm-compare.XXXXXX")
	if [ "$KEEP" != 1 ]; then
		trap 'rm -rf "$WORK"' EXIT
	fi
fi
mkdir -p "$WORK"
log() { echo "run.sh: $*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime | sed 's/.*load average[s]*: //'; }

log "working in $WORK"
# Which gollm is measured: the commit, and whether the working tree differs
# from it (uncommitted changes are built and measured too).
commit=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(cd "$root" && git status --porcelain --untracked-files=no -- '*.go' '*.s' 2>/dev/null | wc -l | tr -d ' ')
log "building gollm"
(cd "$root" && CGO_ENABLED=0 go build -o "$WORK/gollm" ./cmd/gollm)

if [ -z "${MODEL:-}" ]; then
	MODEL=$WORK/qwen3-0.6b-q6_k.gguf
	"$WORK/gollm" synth --preset qwen3-0.6b --type q6_k --out "$MODEL" >&2
fi

# node-llama-cpp ships llama.cpp prebuilt in optional packages, one per
# platform and GPU kind (linux-x64, linux-x64-cuda, linux-x64-vulkan …; the
# CUDA ones are hundreds of MB). --omit=optional skips them all and the
# CPU package for this platform is named explicitly instead;
# --ignore-scripts skips the postinstall step, which would otherwise test
# the binary and try to download and build llama.cpp from source if it
# failed. nlc-bench.mjs then asks for getLlama({gpu: false, build: "never"}).
if [ -z "${NLC_DIR:-}" ]; then
	case "$(node -p 'process.platform + "-" + process.arch')" in
	linux-x64) pkg=linux-x64 ;;
	linux-arm64) pkg=linux-arm64 ;;
	darwin-x64) pkg=mac-x64 ;;
	darwin-arm64) pkg=mac-arm64-metal ;; # the only macOS arm64 build; gpu: false keeps it on the CPU
	*) echo "run.sh: no prebuilt node-llama-cpp package for this platform" >&2; exit 1 ;;
	esac
	NLC_DIR=$WORK/nlc
	mkdir -p "$NLC_DIR"
	echo '{"private": true}' >"$NLC_DIR/package.json"
	log "installing node-llama-cpp@$NLC_VERSION and @node-llama-cpp/$pkg from the npm registry"
	(cd "$NLC_DIR" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --loglevel=error \
		--ignore-scripts --omit=optional "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/$pkg@$NLC_VERSION" >&2)
fi
# The script imports "node-llama-cpp", which resolves from its own folder.
cp "$here/nlc-bench.mjs" "$NLC_DIR/nlc-bench.mjs"

common=(--threads "$THREADS" --pp "$PP" --tg "$TG" --seqs "$SEQS" --prompt-len "$PROMPT_LEN"
	--batch-tg "$BATCH_TG" --reps "$REPS" --batch-size "$BATCH_SIZE")

load_gollm=$(loadavg)
log "gollm bench (load average $load_gollm)"
"$WORK/gollm" bench --model "$MODEL" --json "${common[@]}" >"$WORK/gollm.json"
load_after_gollm=$(loadavg)

# The prompts are drawn from the vocabulary gollm reports using.
vocab=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).prompt_vocab' "$WORK/gollm.json")
load_nlc=$(loadavg)
log "node-llama-cpp $NLC_VERSION (load average $load_nlc)"
(cd "$NLC_DIR" && node nlc-bench.mjs --model "$MODEL" --vocab "$vocab" "${common[@]}") >"$WORK/nlc.json"
load_after_nlc=$(loadavg)

node "$here/table.mjs" "$WORK/gollm.json" "$WORK/nlc.json" "$OUT" \
	"$load_gollm" "$load_after_gollm" "$load_nlc" "$load_after_nlc" "$(nproc 2>/dev/null || echo '?')" \
	"$commit" "$dirty"
