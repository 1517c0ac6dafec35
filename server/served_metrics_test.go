package server

import (
	"testing"
)

// TestServedMetrics: /metrics of a running server, scraped as the EPP
// scrapes it, follows the requests: the running gauge counts a request
// being answered, the waiting gauge one queued behind it, both go back to
// 0 when they are done, and the counters and the tokens-per-step
// histogram add up to what the requests did.
func TestServedMetrics(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 1, Queue: 2, ModelName: testModel})
	sc := scraper{t, ts.http.URL + "/metrics"}
	const body = `{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":0}`
	b := newBlock(ts.Server)
	queued := make(chan struct{}, 1)
	ts.hooks.onQueued = func() { queued <- struct{}{} }

	f := sc.scrape()
	want(t, "running before", f.gauge(MetricRequestsRunning), 0)
	want(t, "waiting before", f.gauge(MetricRequestsWaiting), 0)
	first, second := make(chan int), make(chan int)
	go func() { s, _ := ts.post(t, "/v1/chat/completions", body); first <- s }()
	<-b.started
	f = sc.scrape()
	want(t, "running with one request", f.gauge(MetricRequestsRunning), 1)
	want(t, "waiting with one request", f.gauge(MetricRequestsWaiting), 0)
	go func() { s, _ := ts.post(t, "/v1/chat/completions", body); second <- s }()
	<-queued
	f = sc.scrape()
	want(t, "running with one queued", f.gauge(MetricRequestsRunning), 1)
	want(t, "waiting with one queued", f.gauge(MetricRequestsWaiting), 1)
	if f.gauge(MetricKVCacheUsage) <= 0 {
		t.Errorf("KV usage %g while a request holds blocks", f.gauge(MetricKVCacheUsage))
	}
	b.release()
	if s1, s2 := <-first, <-second; s1 != 200 || s2 != 200 {
		t.Fatalf("statuses %d, %d", s1, s2)
	}
	// A bad request counts too, in gollm_requests_total.
	if s, _ := ts.post(t, "/v1/chat/completions", `{"messages":[]}`); s != 400 {
		t.Fatalf("bad request: %d", s)
	}
	f = sc.scrape()
	want(t, "running after", f.gauge(MetricRequestsRunning), 0)
	want(t, "waiting after", f.gauge(MetricRequestsWaiting), 0)
	want(t, "KV usage after", f.gauge(MetricKVCacheUsage), 0)
	want(t, "successes", f.counter(MetricRequestSuccess, labelFinishedReason, "length"), 2)
	want(t, "generated tokens", f.counter(MetricGenerationTokens), 4)
	want(t, "200s", f.counter(MetricRequests, labelEndpoint, "chat", labelStatus, "200"), 2)
	want(t, "400s", f.counter(MetricRequests, labelEndpoint, "chat", labelStatus, "400"), 1)
	if f.counter(MetricPromptTokens) == 0 {
		t.Error("no prompt tokens counted")
	}
	want(t, "steps", float64(f.histogram(MetricIterationTokens).GetSampleCount()), float64(ts.Context().Steps()))
	if got := f.histogram(MetricTTFT).GetSampleCount(); got != 2 {
		t.Errorf("%d time-to-first-token samples, want 2", got)
	}
}
