// table.mjs prints gollm and node-llama-cpp side by side and writes all
// figures to one JSON file (called by run.sh).
//
//   node table.mjs gollm.json nlc.json out.json [4 load averages] [cores] [commit] [changed files]
import {readFileSync, writeFileSync} from "node:fs";

const [gPath, nPath, outPath, loadG, loadG2, loadN, loadN2, cores, commit, dirty] = process.argv.slice(2);
const g = JSON.parse(readFileSync(gPath, "utf8"));
const n = JSON.parse(readFileSync(nPath, "utf8"));

// best is the fastest repetition: on a shared machine, where other work
// comes and goes, the median shows what a run met and the best what the
// engine does when it has the cores to itself.
const best = (xs) => (xs?.length ? Math.max(...xs) : null);
const rows = [
    {name: `pp${g.pp} (prompt tok/s)`, key: "pp", gollm: g.pp_tokens_per_second, nlc: n.pp_tokens_per_second,
        gollm_best: best(g.pp_samples), nlc_best: best(n.pp_samples)},
    {name: `tg${g.tg} (1 sequence, tok/s)`, key: "tg", gollm: g.tg_tokens_per_second, nlc: n.tg_tokens_per_second,
        gollm_best: best(g.tg_samples), nlc_best: best(n.tg_samples)}
];
for (const gb of g.batched) {
    const nb = n.batched.find((b) => b.seqs === gb.seqs);
    rows.push({name: `batched x${gb.seqs} (total tok/s)`, key: `batched_${gb.seqs}`, gollm: gb.tokens_per_second,
        nlc: nb?.tokens_per_second, gollm_best: best(gb.samples), nlc_best: best(nb?.samples),
        gollm_vs_seq: gb.ratio_vs_sequential, nlc_vs_seq: nb?.ratio_vs_sequential});
}
for (const r of rows) {
    r.ratio = r.nlc ? r.gollm / r.nlc : null;
    r.ratio_best = r.nlc_best ? r.gollm_best / r.nlc_best : null;
}

const f = (x, w, d = 2) => (x == null || !Number.isFinite(x) ? "-" : x.toFixed(d)).padStart(w);
const mib = (b) => (b == null ? "-" : (b / 2 ** 20).toFixed(0) + " MiB");
const lines = [];
lines.push(`gollm vs node-llama-cpp ${n.node_llama_cpp_version} (llama.cpp ${n.llama_cpp_release?.release}, ${n.build_type} CPU binary)`);
lines.push(`gollm ${commit ?? "?"}${Number(dirty) > 0 ? ` with ${dirty} uncommitted Go/assembly files` : ""}, ${g.backend}`);
lines.push(`model ${g.model}, ${g.threads} threads, median of ${g.reps} reps; batched: ${g.prompt_len}-token prompts, ` +
    `${g.batched_tg} tokens generated each, generation phase only`);
lines.push("");
lines.push(`${"".padEnd(30)}${"median of reps".padStart(31)}${"best rep".padStart(31)}`);
lines.push(`${"".padEnd(30)}${"gollm".padStart(10)}${"nlc".padStart(10)}${"gollm/nlc".padStart(11)}` +
    `${"gollm".padStart(10)}${"nlc".padStart(10)}${"gollm/nlc".padStart(11)}` +
    `${"gollm x seq".padStart(13)}${"nlc x seq".padStart(11)}`);
for (const r of rows)
    lines.push(`${r.name.padEnd(30)}${f(r.gollm, 10)}${f(r.nlc, 10)}${f(r.ratio, 11)}` +
        `${f(r.gollm_best, 10)}${f(r.nlc_best, 10)}${f(r.ratio_best, 11)}` +
        `${f(r.gollm_vs_seq, 13)}${f(r.nlc_vs_seq, 11)}`);
lines.push("");
lines.push(`x seq: batched total tok/s / the same prompts run one after another on one sequence (generation phases, medians)`);
lines.push(`gollm: ${(g.weights_bytes_per_token / 1e6).toFixed(1)} MB of weights per token; at tg speed ` +
    `${g.achieved_gbs.toFixed(2)} GB/s = ${(100 * g.bandwidth_fraction).toFixed(0)}% of the measured ` +
    `${g.bandwidth_gbs.toFixed(2)} GB/s (${g.threads} threads; ${g.bandwidth_1thread_gbs.toFixed(2)} GB/s with 1)`);
const nlcGBs = g.weights_bytes_per_token * n.tg_tokens_per_second / 1e9;
lines.push(`node-llama-cpp at the same weight bytes per token: ${nlcGBs.toFixed(2)} GB/s = ` +
    `${(100 * nlcGBs / g.bandwidth_gbs).toFixed(0)}%`);
lines.push(`peak RSS (VmHWM): gollm ${mib(g.peak_rss_bytes)}, node-llama-cpp ${mib(n.peak_rss_bytes)}`);
lines.push(`load average (1, 5, 15 min) on ${cores ?? "?"} cores: gollm ${loadG} → ${loadG2}, ` +
    `node-llama-cpp ${loadN} → ${loadN2}`);
console.log(lines.join("\n"));

const out = {
    date: new Date().toISOString(), cores: Number(cores) || null, gollm_commit: commit ?? null,
    gollm_uncommitted_files: dirty == null ? null : Number(dirty),
    load_average: {gollm_before: loadG, gollm_after: loadG2, nlc_before: loadN, nlc_after: loadN2},
    ratios: Object.fromEntries(rows.map((r) => [r.key, r.ratio])),
    ratios_best: Object.fromEntries(rows.map((r) => [r.key, r.ratio_best])),
    nlc_achieved_gbs: nlcGBs, gollm: g, node_llama_cpp: n, table: lines
};
writeFileSync(outPath, JSON.stringify(out, null, 2) + "\n");
console.log(`\nall figures: ${outPath}`);
