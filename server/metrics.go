package server

// A temporary stand-in for the Prometheus metrics, with the API of the
// real server/metrics.go that is built on the metrics branch; this file
// is replaced by that one at the merge. It registers nothing but a
// request counter, and keeps the gauges in memory so that tests can read
// them (queued and running requests).

import (
	"sync/atomic"
	"time"

	"github.com/gollm/gollm"
	"github.com/prometheus/client_golang/prometheus"
)

// RequestRecord describes one finished request.
type RequestRecord struct {
	Endpoint        string // "chat" or "completions"
	Status          int    // HTTP status sent
	PromptTokens    int
	CachedTokens    int // prompt tokens found in the prefix cache
	GeneratedTokens int
	TTFT            time.Duration // 0 when no token was generated
	Duration        time.Duration // end to end
	Finish          string        // OpenAI finish_reason, "" on error
}

// Metrics holds the server's collectors.
type Metrics struct {
	queued, running atomic.Int64
	requests        *prometheus.CounterVec
	stepTokens      prometheus.Histogram
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer, c *gollm.Context, model string) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gollm_requests_total",
			Help: "Requests answered.", ConstLabels: prometheus.Labels{"model_name": model}}, []string{"endpoint", "code"}),
		stepTokens: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gollm_step_tokens",
			Help: "Tokens per engine step.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
	}
	reg.MustRegister(m.requests, m.stepTokens,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gollm_requests_waiting", Help: "Requests waiting for a sequence."},
			func() float64 { return float64(m.queued.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gollm_requests_running", Help: "Requests holding sequences."},
			func() float64 { return float64(m.running.Load()) }))
	return m
}

// Queued moves the waiting gauge.
func (m *Metrics) Queued(delta int) { m.queued.Add(int64(delta)) }

// Running moves the running gauge.
func (m *Metrics) Running(delta int) { m.running.Add(int64(delta)) }

// RequestDone records a finished request.
func (m *Metrics) RequestDone(r RequestRecord) {
	m.requests.WithLabelValues(r.Endpoint, itoa(r.Status)).Inc()
}

// Step records one engine step.
func (m *Metrics) Step(info gollm.StepInfo) { m.stepTokens.Observe(float64(info.Tokens)) }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
