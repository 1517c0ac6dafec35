package server

// Prometheus metrics of `gollm serve`, served at /metrics.
//
// # Who reads them
//
// Two readers matter. People (dashboards, alerts) want latency
// histograms and token counters. A router wants three numbers per
// replica, many times a second, to pick where the next request goes: the
// Kubernetes Gateway API Inference Extension's endpoint picker (EPP)
// scrapes every model server of an InferencePool and scores each one by
// its queue, its running requests and how full its KV cache is (and, for
// its prefix-cache scorer, the KV block size and block count). The
// extension's Model Server Protocol fixes the types and meanings of those
// metrics, not their names: the EPP takes the names from flags. Its
// defaults are vLLM's:
//
//	EPP flag                            default (what gollm exposes)
//	--total-queued-requests-metric      vllm:num_requests_waiting     gauge
//	--total-running-requests-metric     vllm:num_requests_running     gauge
//	--kv-cache-usage-percentage-metric  vllm:kv_cache_usage_perc      gauge, a fraction 0..1
//	--cache-info-metric                 vllm:cache_config_info        gauge 1, labels block_size, num_gpu_blocks
//	--lora-info-metric                  vllm:lora_requests_info       gauge, labels max_lora="0" and no adapters
//
// # Why vLLM's names
//
// gollm exposes those names, so an EPP installed with its defaults routes
// between gollm replicas with no flag and no adapter; llm-d's EPP also
// treats a pod without an engine-type label as vLLM. The alternative,
// gollm_* names, would put on every EPP
//
//	--total-queued-requests-metric=gollm_requests_waiting
//	--total-running-requests-metric=gollm_requests_running
//	--kv-cache-usage-percentage-metric=gollm_kv_cache_usage_ratio
//	--cache-info-metric=gollm_kv_cache_info
//
// flags that newer EPP releases refuse in favour of engine entries in a
// configuration file, and a misspelt name routes blind without a word:
// depending on the release, the EPP logs a missing metric at trace level
// and keeps a stale value, or drops the endpoint. A second gain: vLLM's
// Grafana dashboards and alerts read gollm unchanged.
//
// The rule that keeps this honest: a name in vllm: means what it means in
// vLLM (same type, unit, labels and event), and whatever vLLM has no
// metric for is named gollm_*. The costs: a prefix naming another project,
// and a colon in the name, which Prometheus's naming guide keeps for
// recording rules (vLLM does the same; the EPP needs the exact string).
//
// LoRA: gollm serves no LoRA adapters, and says so: vllm:lora_requests_info
// with max_lora="0", empty running and waiting lists, and as value the
// time it was set (vLLM's value is its last update). vLLM shows this gauge
// only with LoRA on, and EPPs differ about a missing one: those whose code
// was read for this file log it at trace level and keep the rest, while a
// user report against EPP v1.5.0 has it mark the endpoint unhealthy, in a
// release that no longer accepts --lora-info-metric to turn the look-up
// off. The EPP code read for this file takes the empty series as "no
// adapters here", the same answer for every gollm replica, so it never
// tips a choice between them.
//
// # Where each number comes from
//
// The server drives the request-side metrics: Queued and Running as
// requests wait for a sequence and hold one, RequestDone once per HTTP
// request, Step for every engine step (from ContextOptions.OnStep). The
// engine-side numbers — KV usage, prefix-cache queries and hits,
// preemptions, evictions — are read from Context.Stats when Prometheus
// scrapes, by one collector, so that one scrape sees one snapshot (hits
// never exceed queries) and nothing is counted twice.

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gollm/gollm"
)

// Metric names. Those in vllm: have vLLM's meaning; see the top of this
// file. The README's metrics table lists exactly these (a test checks it).
const (
	// The Model Server Protocol's three gauges, the cache and LoRA info.
	MetricRequestsWaiting = "vllm:num_requests_waiting"
	MetricRequestsRunning = "vllm:num_requests_running"
	MetricKVCacheUsage    = "vllm:kv_cache_usage_perc"
	MetricCacheConfigInfo = "vllm:cache_config_info"
	MetricLoRAInfo        = "vllm:lora_requests_info"

	// Engine counters, read from Context.Stats at scrape time.
	MetricPrefixCacheQueries = "vllm:prefix_cache_queries_total"
	MetricPrefixCacheHits    = "vllm:prefix_cache_hits_total"
	MetricPreemptions        = "vllm:num_preemptions_total"
	MetricKVEvictions        = "gollm_kv_cache_evictions_total"

	// Token counters, from RequestDone.
	MetricPromptTokens       = "vllm:prompt_tokens_total"
	MetricPromptTokensCached = "vllm:prompt_tokens_cached_total"
	MetricGenerationTokens   = "vllm:generation_tokens_total"

	// Request counters, from RequestDone.
	MetricRequestSuccess = "vllm:request_success_total"
	MetricRequests       = "gollm_requests_total"

	// Histograms.
	MetricTTFT                = "vllm:time_to_first_token_seconds"
	MetricTPOT                = "vllm:request_time_per_output_token_seconds"
	MetricE2ELatency          = "vllm:e2e_request_latency_seconds"
	MetricRequestPromptTokens = "vllm:request_prompt_tokens"
	MetricRequestGenTokens    = "vllm:request_generation_tokens"
	MetricIterationTokens     = "vllm:iteration_tokens_total"
)

// Label names: vLLM's, and endpoint and status for gollm_requests_total.
const (
	labelModel                  = "model_name" // on every series
	labelFinishedReason         = "finished_reason"
	labelEndpoint, labelStatus  = "endpoint", "status"
	labelBlockSize, labelBlocks = "block_size", "num_gpu_blocks"
	labelMaxLoRA                = "max_lora"
	labelLoRARunning            = "running_lora_adapters"
	labelLoRAWaiting            = "waiting_lora_adapters"
)

// Histogram buckets, in seconds. CPU inference spans five orders of
// magnitude, so the latency buckets step by 1, 2.5, 5 per decade (a
// quantile read from them is off by at most a factor 2.5, and usually far
// less), over the whole range a CPU server sees:
//
//   - Time to first token, 1 ms to 10 min. A short prompt on a small
//     model, or one found in the prefix cache, answers in milliseconds. A
//     4,096-token prompt at 30 tokens/s of prefill (the order of an 8B
//     model on a laptop's cores) takes 4096/30 = 137 s before its first
//     token, and a request queued behind --parallel others waits for
//     theirs too. vLLM's buckets, made for GPUs, are dense below 0.1 s and
//     jump from 160 s to 640 s; these keep one ratio over the whole range.
//   - Time per output token, 1 ms to 10 s, with extra steps between 50
//     and 300 ms: that is where "faster than a person reads" (about 4 to
//     20 tokens/s) is decided, the line most latency objectives draw.
//   - End to end, 10 ms to 30 min: TTFT plus up to thousands of tokens at
//     CPU decode speed.
var (
	ttftBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
		1, 2.5, 5, 10, 25, 50, 100, 250, 600}
	tpotBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15,
		0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10}
	e2eBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50,
		100, 250, 500, 1000, 1800}
)

// RequestRecord is what the server knows of one HTTP request once it has
// answered it.
type RequestRecord struct {
	Endpoint        string        // "chat" or "completions"
	Status          int           // HTTP status sent
	PromptTokens    int           // prompt tokens, as usage.prompt_tokens
	CachedTokens    int           // prompt tokens found in the prefix cache
	GeneratedTokens int           // as usage.completion_tokens
	TTFT            time.Duration // 0 when no token was generated
	Duration        time.Duration // end to end
	Finish          string        // OpenAI finish_reason, "" on error
}

// Metrics holds gollm serve's collectors. Its methods are safe for
// concurrent use.
type Metrics struct {
	waiting, running prometheus.Gauge

	promptTokens, cachedTokens, genTokens prometheus.Counter
	success                               *prometheus.CounterVec // by finished_reason
	requests                              *prometheus.CounterVec // by endpoint, status

	ttft, tpot, e2e         prometheus.Histogram
	reqPromptTok, reqGenTok prometheus.Histogram
	iterationTokens         prometheus.Histogram
}

// NewMetrics registers the collectors on reg, every series labelled
// model_name=model as vLLM does. c is the serving context: KV
// utilization, prefix-cache queries and hits, preemptions and evictions
// are read from c.Stats() at scrape time, and its options size the token
// histograms. c may be nil (no engine metrics), for tests of the request
// side alone. It panics if reg already holds one of these metrics, which
// is a programming error: one server, one Metrics, one registry.
func NewMetrics(reg prometheus.Registerer, c *gollm.Context, model string) *Metrics {
	labels := prometheus.Labels{labelModel: model}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets, ConstLabels: labels})
	}

	// Token-count buckets follow the context: per request 1, 2, 5, 10, …
	// up to the context size (as vLLM's build_1_2_5_buckets up to
	// max_model_len); per step powers of two up to the batch size, so the
	// largest step has a bucket of its own and the low buckets separate
	// a step of one decoding sequence (1 token) from steps that carry
	// several (2, 4, 8 with --parallel 8): that histogram is where
	// batching shows.
	maxRequestTokens, maxStepTokens := gollm.DefaultContextSize, gollm.DefaultBatchSize
	if c != nil {
		o := c.Options()
		maxRequestTokens, maxStepTokens = o.ContextSize, o.BatchSize
	}

	m := &Metrics{
		waiting: gauge(MetricRequestsWaiting,
			"Requests waiting for a sequence of the context (the server's queue)."),
		running: gauge(MetricRequestsRunning,
			"Requests holding a sequence: being evaluated, generating, or preempted and waiting for KV room."),
		promptTokens: counter(MetricPromptTokens,
			"Prompt tokens of answered requests, cached ones included (usage.prompt_tokens)."),
		cachedTokens: counter(MetricPromptTokensCached,
			"Prompt tokens found in the prefix cache, not evaluated again (usage.prompt_tokens_details.cached_tokens)."),
		genTokens: counter(MetricGenerationTokens,
			"Generated tokens (usage.completion_tokens)."),
		success: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequestSuccess,
			Help:        "Requests that finished with an answer, by OpenAI finish_reason.",
			ConstLabels: labels}, []string{labelFinishedReason}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests,
			Help:        "Generation requests answered, by endpoint (chat, completions) and HTTP status, errors included.",
			ConstLabels: labels}, []string{labelEndpoint, labelStatus}),
		ttft: histogram(MetricTTFT,
			"Time from receiving a request to its first generated token, in seconds.", ttftBuckets),
		tpot: histogram(MetricTPOT,
			"Per request, the mean time between generated tokens after the first, in seconds.", tpotBuckets),
		e2e: histogram(MetricE2ELatency,
			"Time from receiving a request to its last byte, for requests that finished with an answer, in seconds.", e2eBuckets),
		reqPromptTok: histogram(MetricRequestPromptTokens,
			"Prompt tokens per finished request.", buckets125(maxRequestTokens)),
		reqGenTok: histogram(MetricRequestGenTokens,
			"Generated tokens per finished request.", buckets125(maxRequestTokens)),
		iterationTokens: histogram(MetricIterationTokens,
			"Tokens per engine step (prompt and generated, all sequences together).", bucketsPow2(maxStepTokens)),
	}
	lora := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricLoRAInfo,
		Help:        "LoRA adapters: none can be loaded (max_lora 0), none running or waiting. The value is the Unix time it was set.",
		ConstLabels: labels}, []string{labelMaxLoRA, labelLoRARunning, labelLoRAWaiting})
	lora.WithLabelValues("0", "", "").SetToCurrentTime()
	reg.MustRegister(m.waiting, m.running, m.promptTokens, m.cachedTokens, m.genTokens,
		m.success, m.requests, m.ttft, m.tpot, m.e2e, m.reqPromptTok, m.reqGenTok, m.iterationTokens, lora)
	if c != nil {
		reg.MustRegister(newContextCollector(c, labels))
	}
	return m
}

// Queued adds delta to the requests waiting for a sequence: +1 when a
// request starts waiting, -1 when it stops (it got one, gave up, or was
// refused).
func (m *Metrics) Queued(delta int) { m.waiting.Add(float64(delta)) }

// Running adds delta to the requests holding a sequence: +1 when a
// request gets one, -1 when it gives it back.
func (m *Metrics) Running(delta int) { m.running.Add(float64(delta)) }

// RequestDone records one answered request. Every request counts in
// gollm_requests_total and its tokens in the token counters. The latency
// histograms take what the request really measured, following vLLM:
//
//   - time to first token, if a token came (a client that left after it
//     still saw it);
//   - time per output token, if two or more came: the decode time
//     Duration-TTFT spread over the GeneratedTokens-1 gaps. Ten tokens,
//     the first at 1 s and the request done at 1.9 s: (1.9-1)/9 = 0.1 s;
//   - end-to-end latency, the success counter and the per-request token
//     histograms, only if it finished with an answer (Finish != ""): a
//     refused request's 50 µs would drag the latency quantiles down.
func (m *Metrics) RequestDone(r RequestRecord) {
	m.requests.WithLabelValues(r.Endpoint, strconv.Itoa(r.Status)).Inc()
	m.promptTokens.Add(float64(max(r.PromptTokens, 0)))
	m.cachedTokens.Add(float64(max(r.CachedTokens, 0)))
	m.genTokens.Add(float64(max(r.GeneratedTokens, 0)))
	if r.TTFT > 0 {
		m.ttft.Observe(r.TTFT.Seconds())
		if r.GeneratedTokens > 1 && r.Duration > r.TTFT {
			m.tpot.Observe((r.Duration - r.TTFT).Seconds() / float64(r.GeneratedTokens-1))
		}
	}
	if r.Finish != "" {
		m.success.WithLabelValues(r.Finish).Inc()
		m.e2e.Observe(r.Duration.Seconds())
		m.reqPromptTok.Observe(float64(r.PromptTokens))
		m.reqGenTok.Observe(float64(r.GeneratedTokens))
	}
}

// Step records one engine step: the tokens it evaluated, every sequence's
// together. Call it for every step, from ContextOptions.OnStep. OnStep is
// fixed before the context exists and NewMetrics wants the context, so
// let OnStep read the Metrics through an atomic.Pointer stored once
// NewMetrics returns (steps before that are none: no request has run).
func (m *Metrics) Step(info gollm.StepInfo) { m.iterationTokens.Observe(float64(info.Tokens)) }

// contextCollector reads a context's counters and KV cache when
// Prometheus scrapes: the engine already counts these, so copying them
// into Prometheus counters on every step would only add a second count
// to keep in step with the first.
type contextCollector struct {
	c                                       *gollm.Context
	usage, queries, hits, preempts, evicted *prometheus.Desc
	info                                    prometheus.Metric // constant: the pool's shape never changes
}

func newContextCollector(c *gollm.Context, labels prometheus.Labels) *contextCollector {
	desc := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, variable, labels)
	}
	kv := c.Stats().KV
	info := desc(MetricCacheConfigInfo,
		"The KV cache's shape, as labels: block_size in tokens, num_gpu_blocks the blocks in the pool (on whatever device holds it). The value is 1.",
		labelBlockSize, labelBlocks)
	return &contextCollector{
		c: c,
		usage: desc(MetricKVCacheUsage,
			"Fraction of KV blocks held by sequences (0..1). Cached blocks no sequence holds count as free: they are given up on demand."),
		queries: desc(MetricPrefixCacheQueries,
			"Prompt tokens looked up in the prefix cache."),
		hits: desc(MetricPrefixCacheHits,
			"Prompt tokens found in the prefix cache (shared, not evaluated again)."),
		preempts: desc(MetricPreemptions,
			"Requests preempted: their KV blocks given to others, their tokens recomputed later."),
		evicted: desc(MetricKVEvictions,
			"Cached KV blocks reused for other data (prefix-cache entries lost to make room)."),
		info: prometheus.MustNewConstMetric(info, prometheus.GaugeValue, 1,
			strconv.Itoa(kv.BlockSize), strconv.Itoa(kv.Blocks)),
	}
}

func (cc *contextCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cc.usage, cc.queries, cc.hits, cc.preempts, cc.evicted, cc.info.Desc()} {
		ch <- d
	}
}

func (cc *contextCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	ch <- prometheus.MustNewConstMetric(cc.usage, prometheus.GaugeValue, kvUsage(st.KV.Blocks, st.KV.FreeBlocks))
	ch <- prometheus.MustNewConstMetric(cc.queries, prometheus.CounterValue, float64(st.KV.PrefixQueried))
	ch <- prometheus.MustNewConstMetric(cc.hits, prometheus.CounterValue, float64(st.KV.PrefixHits))
	ch <- prometheus.MustNewConstMetric(cc.preempts, prometheus.CounterValue, float64(st.Preemptions))
	ch <- prometheus.MustNewConstMetric(cc.evicted, prometheus.CounterValue, float64(st.KV.Evictions))
	ch <- cc.info
}

// kvUsage is the KV-cache utilization the EPP compares between replicas:
// the fraction of blocks that sequences hold. kvcache counts a cached
// block that no sequence references as free (FreeBlocks is "free or
// evictable"), and so does this, as vLLM does: such a block is handed out
// the moment a sequence needs room. Worked example: a pool of 64 blocks;
// two requests share a 4-block system prompt and hold 6 blocks of their
// own each, so 4+6+6 = 16 blocks are held (a shared block counts once);
// 8 more blocks hold the prefixes of finished conversations. Usage is
// 16/64 = 0.25, not 24/64. Counting the 8 as used would make a replica
// that has served many distinct prompts look full for good, and the EPP
// would steer traffic away from exactly the replica whose cache could
// serve it.
func kvUsage(blocks, free int) float64 {
	if blocks <= 0 {
		return 0
	}
	return float64(blocks-free) / float64(blocks)
}

// buckets125 returns 1, 2, 5, 10, 20, 50, … up to limit (limit included
// when it falls between), for token counts.
func buckets125(limit int) []float64 {
	var b []float64
	for scale := 1; ; scale *= 10 {
		for _, m := range []int{1, 2, 5} {
			v := m * scale
			if v >= limit {
				return append(b, float64(limit))
			}
			b = append(b, float64(v))
		}
	}
}

// bucketsPow2 returns 1, 2, 4, … up to limit (limit included).
func bucketsPow2(limit int) []float64 {
	var b []float64
	for v := 1; v < limit; v *= 2 {
		b = append(b, float64(v))
	}
	return append(b, float64(max(limit, 1)))
}
