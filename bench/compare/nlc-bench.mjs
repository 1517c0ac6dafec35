// nlc-bench.mjs measures node-llama-cpp the way `gollm bench --json`
// measures gollm, and prints one JSON object with the same field names.
//
//   node nlc-bench.mjs --model FILE --vocab V [--threads 2] [--pp 512]
//        [--tg 128] [--seqs 1,2,4,8] [--prompt-len 128] [--batch-tg 64]
//        [--reps 3] [--batch-size 512]
//
// It must run from a folder whose node_modules holds node-llama-cpp
// (bench/compare/run.sh copies it next to its own install). It uses only
// the prebuilt CPU binary: getLlama({gpu: false, build: "never"}).
//
// What is measured (see `gollm bench -h`, which this mirrors):
//   pp       one sequence evaluates a --pp token prompt without generating
//            (evaluateWithoutGeneratingNewTokens), batch size >= pp.
//   tg       one sequence generates --tg tokens from a one-token prompt in
//            an empty cache, greedy (temperature 0), end-of-generation
//            tokens yielded and fed back like any other (yieldEogToken).
//   batched  N sequences of one context each evaluate their own prompt but
//            its last token (the prompt phase, all at once with
//            Promise.all), then each evaluates that last token and
//            generates --batch-tg tokens (the generation phase, all at
//            once). tok/s = N x batch-tg / wall time of the generation
//            phase. Repeated generation phases erase the generated tokens
//            first (eraseContextTokenRanges), as gollm's Generate cuts the
//            sequence back to its prompt.
//   sequential  the same prompts one after another on a one-sequence
//            context.
// Every figure is the median of --reps repetitions after a warm-up. The
// prompts are the same ids gollm uses: a 32-bit linear congruential
// generator (x = 1664525x + 1013904223 mod 2^32, id = (x >>> 8) mod vocab)
// seeded 1 for pp, 2 for the tg start token, 100+k for sequence k.

import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import {readFileSync} from "node:fs";

const args = parseArgs(process.argv.slice(2), {
    model: "", vocab: 0, threads: 2, pp: 512, tg: 128, seqs: "1,2,4,8",
    "prompt-len": 128, "batch-tg": 64, reps: 3, "batch-size": 512, "no-sequential": false
});
if (!args.model || !(args.vocab > 0))
    fail("usage: node nlc-bench.mjs --model FILE --vocab V [flags]");
const seqCounts = String(args.seqs).split(",").map(Number);
if (seqCounts.some((n) => !Number.isInteger(n) || n < 1))
    fail(`--seqs ${args.seqs}: want positive integers`);
const T = args.threads, reps = args.reps, promptLen = args["prompt-len"], batchTG = args["batch-tg"];

// The prompt generator, checked against the values pinned by gollm's
// TestLCGPrompt so both programs evaluate the same prompts.
function lcgPrompt(n, vocab, seed) {
    const ids = [];
    let x = seed >>> 0;
    for (let i = 0; i < n; i++) {
        x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        ids.push((x >>> 8) % vocab);
    }
    return ids;
}
if (lcgPrompt(6, 151936, 1).join() !== "16729,117893,103297,126906,88301,122049")
    fail("lcgPrompt does not match gollm's");

const log = (msg) => process.stderr.write(`nlc-bench: ${msg}\n`);
const now = () => performance.now() / 1000; // seconds
const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

const t00 = now();
const llama = await getLlama({gpu: false, build: "never", maxThreads: T, logLevel: LlamaLogLevel.error, progressLogs: false});
const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
const vocab = args.vocab;

const report = {
    engine: "node-llama-cpp", node_llama_cpp_version: packageVersion(), llama_cpp_release: llama.llamaCppRelease,
    build_type: llama.buildType, gpu: llama.gpu, system_info: llama.systemInfo, model: args.model, threads: T,
    statistic: "median", reps, prompt_vocab: vocab, pp: args.pp, tg: args.tg, prompt_len: promptLen, batched_tg: batchTG,
    batch_size: args["batch-size"]
};

// Greedy, and an end-of-generation token is just another token.
const genOptions = {temperature: 0, yieldEogToken: true};

// generate has seq evaluate tokens and then yields n tokens; each new token
// is fed back for the next step except the last (as in gollm).
async function generate(seq, tokens, n) {
    let count = 0;
    for await (const _ of seq.evaluate(tokens, genOptions)) {
        if (++count >= n)
            break;
    }
    if (count !== n)
        throw new Error(`generated ${count} tokens instead of ${n}`);
}

// --- prompt processing and one-sequence generation
{
    const ctx = await model.createContext({sequences: 1, contextSize: Math.max(args.pp, args.tg) + 16,
        batchSize: Math.max(args.pp, args["batch-size"]), threads: T});
    report.flash_attention = ctx.flashAttention;
    report.context_size = ctx.contextSize;
    const seq = ctx.getSequence();
    const ppIDs = lcgPrompt(args.pp, vocab, 1), start = lcgPrompt(1, vocab, 2);
    const timePP = async () => {
        await seq.clearHistory();
        const t0 = now();
        await seq.evaluateWithoutGeneratingNewTokens(ppIDs);
        return now() - t0;
    };
    const timeTG = async (n) => {
        await seq.clearHistory();
        const t0 = now();
        await generate(seq, start, n);
        return now() - t0;
    };
    log("warm-up");
    await timePP();
    await timeTG(Math.min(args.tg, 8));
    report.pp_samples = [];
    for (let r = 0; r < reps; r++) {
        report.pp_samples.push(args.pp / await timePP());
        log(`pp${args.pp} rep ${r + 1}/${reps}: ${report.pp_samples[r].toFixed(2)} tok/s`);
    }
    report.tg_samples = [];
    for (let r = 0; r < reps; r++) {
        report.tg_samples.push(args.tg / await timeTG(args.tg));
        log(`tg${args.tg} rep ${r + 1}/${reps}: ${report.tg_samples[r].toFixed(2)} tok/s`);
    }
    report.pp_tokens_per_second = median(report.pp_samples);
    report.tg_tokens_per_second = median(report.tg_samples);
    await ctx.dispose();
}

// --- batched and sequential generation
const maxSeqs = Math.max(...seqCounts);
const prompts = Array.from({length: maxSeqs}, (_, k) => lcgPrompt(promptLen, vocab, 100 + k));

// promptPhase empties the sequences and has each evaluate its prompt but
// the last token, all at once.
async function promptPhase(seqs, ps) {
    await Promise.all(seqs.map((s) => s.clearHistory()));
    const t0 = now();
    await Promise.all(seqs.map((s, k) => s.evaluateWithoutGeneratingNewTokens(ps[k].slice(0, -1))));
    return now() - t0;
}

// genPhase has every sequence, cut back to its prompt but the last token,
// evaluate that token and generate batch-tg tokens, all at once.
async function genPhase(seqs, ps) {
    await Promise.all(seqs.map((s) => s.nextTokenIndex > promptLen - 1
        ? s.eraseContextTokenRanges([{start: promptLen - 1, end: s.nextTokenIndex}])
        : undefined));
    const t0 = now();
    await Promise.all(seqs.map((s, k) => generate(s, [ps[k][promptLen - 1]], batchTG)));
    return now() - t0;
}

let seqRun = null;
if (!args["no-sequential"]) {
    const ctx = await model.createContext({sequences: 1, contextSize: promptLen + batchTG + 16,
        batchSize: args["batch-size"], threads: T});
    const one = [ctx.getSequence()];
    seqRun = {prompt: [], gen: []};
    for (let k = 0; k < maxSeqs; k++) {
        const pd = await promptPhase(one, [prompts[k]]);
        const gens = [];
        for (let r = 0; r < reps; r++)
            gens.push(await genPhase(one, [prompts[k]]));
        seqRun.prompt.push(pd);
        seqRun.gen.push(median(gens));
        log(`sequential prompt ${k + 1}/${maxSeqs}: ${(batchTG / median(gens)).toFixed(2)} tok/s generating ` +
            `(prompt phase ${((promptLen - 1) / pd).toFixed(2)} tok/s)`);
    }
    await ctx.dispose();
}

report.batched = [];
for (const n of seqCounts) {
    const ctx = await model.createContext({sequences: n, contextSize: promptLen + batchTG + 16,
        batchSize: args["batch-size"], threads: T});
    const seqs = Array.from({length: n}, () => ctx.getSequence());
    const ps = prompts.slice(0, n);
    const pd = await promptPhase(seqs, ps);
    const res = {seqs: n, samples: [], prompt_tokens_per_second: n * (promptLen - 1) / pd};
    const gens = [];
    for (let r = 0; r < reps; r++) {
        const gd = await genPhase(seqs, ps);
        gens.push(gd);
        res.samples.push(n * batchTG / gd);
        log(`batched ${n} seqs rep ${r + 1}/${reps}: ${res.samples[r].toFixed(2)} tok/s generating ` +
            `(prompt phase ${res.prompt_tokens_per_second.toFixed(2)} tok/s)`);
    }
    res.tokens_per_second = n * batchTG / median(gens);
    res.ratio_vs_one_sequence = res.tokens_per_second / report.tg_tokens_per_second;
    if (seqRun != null) {
        res.sequential_tokens_per_second = n * batchTG / sum(seqRun.gen.slice(0, n));
        res.ratio_vs_sequential = res.tokens_per_second / res.sequential_tokens_per_second;
        res.end_to_end_speedup = (sum(seqRun.prompt.slice(0, n)) + sum(seqRun.gen.slice(0, n))) / (pd + median(gens));
    }
    report.batched.push(res);
    await ctx.dispose();
}

report.peak_rss_bytes = peakRSS();
report.seconds = now() - t00;
await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify(report) + "\n");

// peakRSS is VmHWM from /proc/self/status (kB), as gollm reports it.
function peakRSS() {
    try {
        const m = /VmHWM:\s*(\d+)\s*kB/.exec(readFileSync("/proc/self/status", "utf8"));
        return m ? Number(m[1]) * 1024 : null;
    } catch {
        return null;
    }
}

function packageVersion() {
    try {
        // The package's exports hide package.json; find it from the entry point (dist/index.js).
        const url = new URL("../package.json", import.meta.resolve("node-llama-cpp"));
        return JSON.parse(readFileSync(url, "utf8")).version;
    } catch {
        return null;
    }
}

// parseArgs reads --name value and --flag arguments into a copy of
// defaults, converting to the default's type.
function parseArgs(argv, defaults) {
    const out = {...defaults};
    for (let i = 0; i < argv.length; i++) {
        const name = argv[i].replace(/^--/, "");
        if (!argv[i].startsWith("--") || !(name in defaults))
            fail(`unknown argument ${argv[i]}`);
        if (typeof defaults[name] === "boolean") {
            out[name] = true;
            continue;
        }
        const v = argv[++i];
        if (v === undefined)
            fail(`--${name} needs a value`);
        out[name] = typeof defaults[name] === "number" ? Number(v) : v;
        if (typeof defaults[name] === "number" && !Number.isFinite(out[name]))
            fail(`--${name} ${v}: not a number`);
    }
    return out;
}

function fail(msg) {
    process.stderr.write(`nlc-bench: ${msg}\n`);
    process.exit(2);
}
