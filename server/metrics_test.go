package server

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/sample"
)

const testModel = "qwen3-tiny"

// metricsContext loads the tiny fixture and opens a context of two
// sequences whose every step goes to the Metrics that *m points at (set
// after NewMetrics, which needs the context: the server has the same
// chicken and egg).
func metricsContext(t *testing.T, m *atomic.Pointer[Metrics]) *gollm.Context {
	t.Helper()
	mod, err := gollm.LoadModel(testdata.Path("models", "qwen3-tiny-q6k.gguf"), gollm.ModelOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close() })
	c, err := mod.NewContext(gollm.ContextOptions{Sequences: 2, ContextSize: 256,
		OnStep: func(st gollm.StepTrace) {
			if mm := m.Load(); mm != nil {
				mm.Step(st.StepInfo)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// scraper serves reg through promhttp, as the server does, and parses
// what it answers.
type scraper struct {
	t   *testing.T
	url string
}

func newScraper(t *testing.T, reg *prometheus.Registry) scraper {
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return scraper{t, srv.URL}
}

// scrape GETs /metrics with no Accept header, as the EPP does, and parses
// the text format with the legacy name rules: a name the EPP's older
// parser would reject fails here.
func (s scraper) scrape() families {
	s.t.Helper()
	resp, err := http.Get(s.url)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatalf("parsing /metrics: %v", err)
	}
	return families{s.t, fams}
}

type families struct {
	t    *testing.T
	fams map[string]*dto.MetricFamily
}

// series returns the one series of name whose labels include the pairs
// given (name, value, name, value…), and checks its type and model_name.
func (f families) series(name string, typ dto.MetricType, labels ...string) *dto.Metric {
	f.t.Helper()
	fam, ok := f.fams[name]
	if !ok {
		f.t.Fatalf("%s: not exposed", name)
	}
	if fam.GetType() != typ {
		f.t.Fatalf("%s: a %v, want a %v", name, fam.GetType(), typ)
	}
	var found []*dto.Metric
	for _, m := range fam.GetMetric() {
		if hasLabels(m, append([]string{labelModel, testModel}, labels...)...) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		f.t.Fatalf("%s%v: %d series", name, labels, len(found))
	}
	return found[0]
}

func hasLabels(m *dto.Metric, pairs ...string) bool {
	for i := 0; i < len(pairs); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == pairs[i] && l.GetValue() == pairs[i+1]
		}) {
			return false
		}
	}
	return true
}

func (f families) gauge(name string) float64 {
	f.t.Helper()
	return f.series(name, dto.MetricType_GAUGE).GetGauge().GetValue()
}

func (f families) counter(name string, labels ...string) float64 {
	f.t.Helper()
	return f.series(name, dto.MetricType_COUNTER, labels...).GetCounter().GetValue()
}

func (f families) histogram(name string) *dto.Histogram {
	f.t.Helper()
	return f.series(name, dto.MetricType_HISTOGRAM).GetHistogram()
}

// bucket returns the cumulative count of h's bucket whose upper bound is le.
func bucket(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%g", le)
	return 0
}

// want compares a scraped value with the expected one, naming both.
func want(t *testing.T, what string, got, expected float64) {
	t.Helper()
	if got != expected {
		t.Errorf("%s = %g, want %g", what, got, expected)
	}
}

// near is want for sums of float seconds, which the histogram adds in
// its own order.
func near(t *testing.T, what string, got, expected float64) {
	t.Helper()
	if math.Abs(got-expected) > 1e-9*max(1, math.Abs(expected)) {
		t.Errorf("%s = %.12g, want %.12g", what, got, expected)
	}
}

// TestMetricsFollowRequestsAndEngine drives the server's calls around two
// real generations of one prompt on a real context, and scrapes /metrics
// after each move: the gauges follow the requests, KV usage is the
// fraction of blocks held (cached blocks nobody holds count as free), the
// second run of the prompt shows up as prefix-cache hits, and the
// counters and histograms count what RequestDone and Step were given.
func TestMetricsFollowRequestsAndEngine(t *testing.T) {
	var mp atomic.Pointer[Metrics]
	c := metricsContext(t, &mp)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, c, testModel)
	mp.Store(m)
	s := newScraper(t, reg)

	f := s.scrape()
	kv := c.Stats().KV
	want(t, "waiting at start", f.gauge(MetricRequestsWaiting), 0)
	want(t, "running at start", f.gauge(MetricRequestsRunning), 0)
	want(t, "KV usage at start", f.gauge(MetricKVCacheUsage), 0)
	want(t, "prefix queries at start", f.counter(MetricPrefixCacheQueries), 0)
	info := f.series(MetricCacheConfigInfo, dto.MetricType_GAUGE,
		labelBlockSize, strconv.Itoa(kv.BlockSize), labelBlocks, strconv.Itoa(kv.Blocks))
	want(t, "cache_config_info", info.GetGauge().GetValue(), 1)
	if kv.BlockSize != 16 || kv.Blocks != 16 {
		t.Fatalf("a 256-token context has %d blocks of %d tokens, want 16 of 16", kv.Blocks, kv.BlockSize)
	}

	// Two requests arrive and wait; one gets a sequence.
	m.Queued(+1)
	m.Queued(+1)
	f = s.scrape()
	want(t, "waiting after two arrivals", f.gauge(MetricRequestsWaiting), 2)
	m.Queued(-1)
	m.Running(+1)
	f = s.scrape()
	want(t, "waiting after one got a sequence", f.gauge(MetricRequestsWaiting), 1)
	want(t, "running after one got a sequence", f.gauge(MetricRequestsRunning), 1)

	// It generates, and still holds its sequence.
	prompt := c.Model().Tokenize(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 6), false)
	if len(prompt) < 48 {
		t.Fatalf("the prompt has %d tokens; the test wants at least three full blocks", len(prompt))
	}
	greedy := sample.GreedyParams()
	opts := gollm.GenerateOptions{MaxTokens: 4, Sampling: &greedy, IgnoreEOG: true}
	seqA, err := c.Sequence()
	if err != nil {
		t.Fatal(err)
	}
	g1, err := seqA.Generate(context.Background(), prompt, opts)
	if err != nil {
		t.Fatal(err)
	}
	f = s.scrape()
	st := c.Stats()
	held := st.KV.Blocks - st.KV.FreeBlocks
	if held == 0 {
		t.Fatal("the sequence holds no KV block")
	}
	want(t, "KV usage while A holds its blocks", f.gauge(MetricKVCacheUsage), float64(held)/float64(st.KV.Blocks))
	// Generate returns once OnStep has seen its steps: every step is in
	// the histogram, and with one sequence the tokens it evaluated are
	// exactly the steps' tokens.
	iter := f.histogram(MetricIterationTokens)
	want(t, "steps in the tokens-per-step histogram", float64(iter.GetSampleCount()), float64(st.Steps))
	want(t, "tokens in the tokens-per-step histogram", iter.GetSampleSum(), float64(g1.EvaluatedTotal))
	if got := bucket(t, iter, 1); got != uint64(len(g1.Tokens)-1) {
		t.Errorf("%d one-token steps, want %d (one per generated token after the first)", got, len(g1.Tokens)-1)
	}
	m.RequestDone(recordOf("completions", g1, "length"))
	m.Running(-1)
	if err := seqA.Close(); err != nil {
		t.Fatal(err)
	}

	// A gave its blocks back; those full of prompt stay cached, and are
	// free all the same.
	f = s.scrape()
	want(t, "running after A finished", f.gauge(MetricRequestsRunning), 0)
	if st := c.Stats(); st.KV.CachedBlocks == 0 {
		t.Fatal("no block stayed in the prefix cache")
	}
	want(t, "KV usage with only cached blocks", f.gauge(MetricKVCacheUsage), 0)

	// The waiting request gets a sequence and sends the same prompt: its
	// full blocks come from the prefix cache. Scrapes run beside it.
	m.Queued(-1)
	m.Running(+1)
	seqB, err := c.Sequence()
	if err != nil {
		t.Fatal(err)
	}
	var scrapes sync.WaitGroup
	scrapes.Go(func() {
		for range 5 {
			s.scrape()
		}
	})
	g2, err := seqB.Generate(context.Background(), prompt, opts)
	scrapes.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if wantCached := len(prompt) / 16 * 16; g2.CachedTokens != wantCached {
		t.Fatalf("the repeated prompt found %d tokens in the prefix cache, want %d", g2.CachedTokens, wantCached)
	}
	m.RequestDone(recordOf("chat", g2, "stop"))
	m.Running(-1)
	seqB.Close()

	// Two that got no answer: one refused while the queue was full, one
	// whose client left after three tokens.
	m.RequestDone(RequestRecord{Endpoint: "chat", Status: http.StatusTooManyRequests, Duration: 50 * time.Microsecond})
	m.RequestDone(RequestRecord{Endpoint: "chat", Status: http.StatusOK, PromptTokens: 10,
		GeneratedTokens: 3, TTFT: 5 * time.Millisecond, Duration: 25 * time.Millisecond})

	f = s.scrape()
	st = c.Stats()
	want(t, "waiting at the end", f.gauge(MetricRequestsWaiting), 0)
	want(t, "running at the end", f.gauge(MetricRequestsRunning), 0)
	want(t, "prefix-cache hits", f.counter(MetricPrefixCacheHits), float64(g2.CachedTokens))
	want(t, "prefix-cache hits against the context's count", f.counter(MetricPrefixCacheHits), float64(st.KV.PrefixHits))
	want(t, "prefix-cache queries", f.counter(MetricPrefixCacheQueries), float64(st.KV.PrefixQueried))
	if q := f.counter(MetricPrefixCacheQueries); q < float64(2*g2.CachedTokens) {
		t.Errorf("prefix-cache queries = %g; two requests looked up %d full-block tokens each", q, g2.CachedTokens)
	}
	want(t, "preemptions", f.counter(MetricPreemptions), float64(st.Preemptions))
	want(t, "evictions", f.counter(MetricKVEvictions), float64(st.KV.Evictions))

	want(t, "prompt tokens", f.counter(MetricPromptTokens), float64(2*len(prompt)+10))
	want(t, "cached prompt tokens", f.counter(MetricPromptTokensCached), float64(g2.CachedTokens))
	want(t, "generated tokens", f.counter(MetricGenerationTokens), float64(len(g1.Tokens)+len(g2.Tokens)+3))
	want(t, "successes (length)", f.counter(MetricRequestSuccess, labelFinishedReason, "length"), 1)
	want(t, "successes (stop)", f.counter(MetricRequestSuccess, labelFinishedReason, "stop"), 1)
	want(t, "requests (completions, 200)", f.counter(MetricRequests, labelEndpoint, "completions", labelStatus, "200"), 1)
	want(t, "requests (chat, 200)", f.counter(MetricRequests, labelEndpoint, "chat", labelStatus, "200"), 2)
	want(t, "requests (chat, 429)", f.counter(MetricRequests, labelEndpoint, "chat", labelStatus, "429"), 1)

	// TTFT and TPOT for the three that generated, e2e and the per-request
	// token histograms for the two that finished.
	want(t, "TTFT observations", float64(f.histogram(MetricTTFT).GetSampleCount()), 3)
	want(t, "TPOT observations", float64(f.histogram(MetricTPOT).GetSampleCount()), 3)
	want(t, "e2e observations", float64(f.histogram(MetricE2ELatency).GetSampleCount()), 2)
	near(t, "TTFT sum", f.histogram(MetricTTFT).GetSampleSum(), (g1.PromptTime + g2.PromptTime + 5*time.Millisecond).Seconds())
	want(t, "prompt-token histogram sum", f.histogram(MetricRequestPromptTokens).GetSampleSum(), float64(2*len(prompt)))
	want(t, "generated-token histogram sum", f.histogram(MetricRequestGenTokens).GetSampleSum(), float64(len(g1.Tokens)+len(g2.Tokens)))
	iter = f.histogram(MetricIterationTokens)
	want(t, "steps at the end", float64(iter.GetSampleCount()), float64(st.Steps))
	want(t, "step tokens at the end", iter.GetSampleSum(), float64(g1.EvaluatedTotal+g2.EvaluatedTotal))
	t.Logf("prompt %d tokens, %d cached the second time; %d steps; KV %d of %d blocks held during A",
		len(prompt), g2.CachedTokens, st.Steps, held, st.KV.Blocks)
}

// recordOf is the record the server would make of a generation that
// ended with OpenAI's finish reason finish.
func recordOf(endpoint string, g gollm.Generation, finish string) RequestRecord {
	return RequestRecord{Endpoint: endpoint, Status: http.StatusOK, PromptTokens: g.PromptTokens,
		CachedTokens: g.CachedTokens, GeneratedTokens: len(g.Tokens), TTFT: g.PromptTime,
		Duration: g.PromptTime + g.GenTime, Finish: finish}
}

// TestMetricsRequestRecords: which histogram takes which record, into
// which bucket, with no engine behind the Metrics.
func TestMetricsRequestRecords(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, nil, testModel)
	s := newScraper(t, reg)

	// Ten tokens, the first at 1 s, done at 1.9 s: TPOT (1.9-1)/9 = 0.1 s.
	m.RequestDone(RequestRecord{Endpoint: "chat", Status: 200, PromptTokens: 30, CachedTokens: 16,
		GeneratedTokens: 10, TTFT: time.Second, Duration: 1900 * time.Millisecond, Finish: "stop"})
	// One token: a TTFT, no gap to time.
	m.RequestDone(RequestRecord{Endpoint: "completions", Status: 200, PromptTokens: 5,
		GeneratedTokens: 1, TTFT: 3 * time.Millisecond, Duration: 4 * time.Millisecond, Finish: "length"})
	// A bad request: counted, timed nowhere.
	m.RequestDone(RequestRecord{Endpoint: "chat", Status: 400, Duration: time.Millisecond})
	// A refusal arrives and leaves the queue.
	m.Queued(+1)
	m.Queued(-1)
	for _, n := range []int{1, 1, 2, 3, 200} {
		m.Step(gollm.StepInfo{Tokens: n})
	}

	f := s.scrape()
	ttft := f.histogram(MetricTTFT)
	want(t, "TTFT count", float64(ttft.GetSampleCount()), 2)
	want(t, "TTFT ≤ 2.5 ms", float64(bucket(t, ttft, 0.0025)), 0)
	want(t, "TTFT ≤ 5 ms", float64(bucket(t, ttft, 0.005)), 1)
	want(t, "TTFT ≤ 0.5 s", float64(bucket(t, ttft, 0.5)), 1)
	want(t, "TTFT ≤ 1 s", float64(bucket(t, ttft, 1)), 2)
	tpot := f.histogram(MetricTPOT)
	want(t, "TPOT count", float64(tpot.GetSampleCount()), 1)
	near(t, "TPOT", tpot.GetSampleSum(), 0.1)
	want(t, "TPOT ≤ 75 ms", float64(bucket(t, tpot, 0.075)), 0)
	want(t, "TPOT ≤ 100 ms", float64(bucket(t, tpot, 0.1)), 1)
	e2e := f.histogram(MetricE2ELatency)
	want(t, "e2e count", float64(e2e.GetSampleCount()), 2)
	near(t, "e2e sum", e2e.GetSampleSum(), 1.904)
	want(t, "e2e ≤ 10 ms", float64(bucket(t, e2e, 0.01)), 1)
	want(t, "prompt tokens", f.counter(MetricPromptTokens), 35)
	want(t, "cached prompt tokens", f.counter(MetricPromptTokensCached), 16)
	want(t, "generated tokens", f.counter(MetricGenerationTokens), 11)
	want(t, "requests (chat, 400)", f.counter(MetricRequests, labelEndpoint, "chat", labelStatus, "400"), 1)
	if _, ok := f.fams[MetricRequestSuccess]; !ok {
		t.Fatal("no success counter")
	}
	if n := len(f.fams[MetricRequestSuccess].GetMetric()); n != 2 {
		t.Errorf("%d finish reasons counted, want 2 (the 400 has none)", n)
	}
	want(t, "waiting", f.gauge(MetricRequestsWaiting), 0)

	// Steps of 1, 1, 2, 3 and 200 tokens, in the default batch size's
	// power-of-two buckets (no context: DefaultBatchSize = 512).
	iter := f.histogram(MetricIterationTokens)
	for _, b := range []struct {
		le   float64
		want uint64
	}{{1, 2}, {2, 3}, {4, 4}, {128, 4}, {256, 5}, {512, 5}} {
		if got := bucket(t, iter, b.le); got != b.want {
			t.Errorf("steps of ≤ %g tokens: %d, want %d", b.le, got, b.want)
		}
	}
	// Without a context there are no engine metrics.
	for _, name := range []string{MetricKVCacheUsage, MetricPrefixCacheHits, MetricCacheConfigInfo} {
		if _, ok := f.fams[name]; ok {
			t.Errorf("%s exposed with no context", name)
		}
	}
}

// TestMetricsEPPReadsThem reads the scrape the way the inference
// extension's endpoint picker does with its default flags: each spec
// names a family, the EPP takes the gauge value of its (latest) series,
// and the cache info's block_size and num_gpu_blocks labels must parse as
// integers. A counter here would read as 0 in the EPP, so the type is
// checked as well as the name.
func TestMetricsEPPReadsThem(t *testing.T) {
	var mp atomic.Pointer[Metrics]
	c := metricsContext(t, &mp)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, c, testModel)
	mp.Store(m)
	s := newScraper(t, reg)
	m.Queued(3)
	m.Running(2)
	seq, err := c.Sequence()
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	if err := seq.Evaluate(context.Background(), c.Model().Tokenize(strings.Repeat("hello there ", 20), false)); err != nil {
		t.Fatal(err)
	}
	f := s.scrape()
	st := c.Stats().KV
	eppDefaults := map[string]float64{ // EPP flag default → what it should read
		"vllm:num_requests_waiting": 3,                                                     // --total-queued-requests-metric
		"vllm:num_requests_running": 2,                                                     // --total-running-requests-metric
		"vllm:kv_cache_usage_perc":  float64(st.Blocks-st.FreeBlocks) / float64(st.Blocks), // --kv-cache-usage-percentage-metric
	}
	for name, expected := range eppDefaults {
		fam := f.fams[name]
		if fam == nil || fam.GetType() != dto.MetricType_GAUGE || len(fam.GetMetric()) != 1 {
			t.Fatalf("%s: the EPP needs one gauge series, got %v", name, fam)
		}
		want(t, name, fam.GetMetric()[0].GetGauge().GetValue(), expected)
	}
	if u := eppDefaults["vllm:kv_cache_usage_perc"]; u <= 0 || u > 1 {
		t.Errorf("KV usage %g: the EPP wants a fraction in (0, 1] here", u)
	}
	info := f.fams["vllm:cache_config_info"] // --cache-info-metric
	if info == nil || len(info.GetMetric()) != 1 {
		t.Fatalf("cache info: %v", info)
	}
	got := map[string]int{}
	for _, l := range info.GetMetric()[0].GetLabel() {
		if n, err := strconv.Atoi(l.GetValue()); err == nil {
			got[l.GetName()] = n
		}
	}
	if got["block_size"] != st.BlockSize || got["num_gpu_blocks"] != st.Blocks {
		t.Errorf("cache info labels %v, want block_size %d, num_gpu_blocks %d", got, st.BlockSize, st.Blocks)
	}
	// --lora-info-metric: no adapters, none loadable; the EPP parses
	// max_lora as an integer and splits the lists on commas.
	lora := f.fams["vllm:lora_requests_info"]
	if lora == nil || lora.GetType() != dto.MetricType_GAUGE || len(lora.GetMetric()) != 1 {
		t.Fatalf("LoRA info: %v", lora)
	}
	if l := lora.GetMetric()[0]; !hasLabels(l, "max_lora", "0") || l.GetGauge().GetValue() <= 0 {
		t.Errorf("LoRA info %v", l)
	} else {
		for _, p := range l.GetLabel() {
			if strings.HasSuffix(p.GetName(), "_lora_adapters") && p.GetValue() != "" {
				t.Errorf("LoRA info names adapters: %s=%q", p.GetName(), p.GetValue())
			}
		}
	}
}

// TestMetricsREADME: the README's metrics table lists exactly the names
// /metrics exposes, with their types, and its EPP-flag table points each
// flag at an exposed gauge.
func TestMetricsREADME(t *testing.T) {
	var mp atomic.Pointer[Metrics]
	c := metricsContext(t, &mp)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, c, testModel)
	// Labelled counters appear once they have a series.
	m.RequestDone(RequestRecord{Endpoint: "chat", Status: 200, PromptTokens: 1, GeneratedTokens: 1,
		TTFT: time.Millisecond, Duration: time.Millisecond, Finish: "stop"})
	exposed := map[string]string{}
	for name, fam := range newScraper(t, reg).scrape().fams {
		exposed[name] = strings.ToLower(fam.GetType().String())
	}

	text, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := markdownSection(string(text), "### Metrics")
	if section == "" {
		t.Fatal(`README.md has no "### Metrics" section`)
	}
	row := regexp.MustCompile("(?m)^\\| `((?:vllm:|gollm_)[a-z0-9_:]+)` \\| (gauge|counter|histogram) \\|")
	listed := map[string]string{}
	for _, r := range row.FindAllStringSubmatch(section, -1) {
		if _, dup := listed[r[1]]; dup {
			t.Errorf("README lists %s twice", r[1])
		}
		listed[r[1]] = r[2]
	}
	for name, typ := range exposed {
		if listed[name] != typ {
			t.Errorf("exposed %s (%s); README says %q", name, typ, listed[name])
		}
	}
	for name := range listed {
		if _, ok := exposed[name]; !ok {
			t.Errorf("README lists %s, which is not exposed", name)
		}
	}

	flag := regexp.MustCompile("(?m)^\\| `(--[a-z-]+-metric)` \\| `([^`]*)` \\|")
	flags := map[string]string{}
	for _, r := range flag.FindAllStringSubmatch(section, -1) {
		flags[r[1]] = r[2]
	}
	for f, name := range map[string]string{
		"--total-queued-requests-metric":     MetricRequestsWaiting,
		"--total-running-requests-metric":    MetricRequestsRunning,
		"--kv-cache-usage-percentage-metric": MetricKVCacheUsage,
		"--cache-info-metric":                MetricCacheConfigInfo,
	} {
		if flags[f] != name || exposed[name] != "gauge" {
			t.Errorf("README: %s points at %q; want the exposed gauge %s", f, flags[f], name)
		}
	}
}

// markdownSection returns the text under heading, up to the next heading
// of the same or a higher level (lines in code blocks are no headings).
func markdownSection(doc, heading string) string {
	level := strings.Index(heading, " ")
	var b strings.Builder
	in, code := false, false
	for line := range strings.SplitSeq(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			code = !code
		}
		if !code && strings.HasPrefix(line, "#") {
			l := strings.IndexFunc(line, func(r rune) bool { return r != '#' })
			if in && l <= level {
				break
			}
			if line == heading {
				in = true
				continue
			}
		}
		if in {
			fmt.Fprintln(&b, line)
		}
	}
	return b.String()
}

// TestMetricsConcurrentUse: the server calls Metrics from every request's
// goroutine and the step goroutine while Prometheus scrapes; run with
// -race. Every +1 has its -1, so the gauges end at 0 and the counters at
// exact totals.
func TestMetricsConcurrentUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, nil, testModel)
	s := newScraper(t, reg)
	const workers, each = 4, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range each {
				m.Queued(+1)
				m.Queued(-1)
				m.Running(+1)
				m.Step(gollm.StepInfo{Tokens: i%8 + 1})
				m.RequestDone(RequestRecord{Endpoint: "chat", Status: 200, PromptTokens: 2, GeneratedTokens: 3,
					TTFT: time.Millisecond, Duration: 2 * time.Millisecond, Finish: "stop"})
				m.Running(-1)
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			s.scrape()
		}
	})
	wg.Wait()
	f := s.scrape()
	want(t, "waiting", f.gauge(MetricRequestsWaiting), 0)
	want(t, "running", f.gauge(MetricRequestsRunning), 0)
	want(t, "requests", f.counter(MetricRequests, labelEndpoint, "chat", labelStatus, "200"), workers*each)
	want(t, "generated tokens", f.counter(MetricGenerationTokens), 3*workers*each)
	want(t, "steps", float64(f.histogram(MetricIterationTokens).GetSampleCount()), workers*each)
}

// TestBuckets: the token buckets end at the limit they are given.
func TestBuckets(t *testing.T) {
	for _, c := range []struct {
		got, want []float64
	}{
		{buckets125(256), []float64{1, 2, 5, 10, 20, 50, 100, 200, 256}},
		{buckets125(200), []float64{1, 2, 5, 10, 20, 50, 100, 200}},
		{buckets125(1), []float64{1}},
		{bucketsPow2(512), []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}},
		{bucketsPow2(300), []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 300}},
		{bucketsPow2(1), []float64{1}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("got %v, want %v", c.got, c.want)
		}
	}
	for _, b := range [][]float64{ttftBuckets, tpotBuckets, e2eBuckets} {
		if !slices.IsSorted(b) {
			t.Errorf("buckets out of order: %v", b)
		}
	}
}
