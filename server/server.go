// Package server is gollm's OpenAI-compatible HTTP server: what
// `gollm serve` runs.
//
// # The flow of a request
//
// One gollm.Context with Options.Parallel sequences serves every request,
// so the tokens of all the requests being answered go into the same
// forward passes: eight clients asking at once cost about what one costs.
// A chat request goes through these steps, each in its own file:
//
//	auth.go       the Bearer key, compared in constant time (401)
//	request.go    the JSON body, read through a size cap (413) and checked
//	              field by field (400, with the field in "param")
//	chat.go       messages → the model's chat template → tokens, with
//	              the messages' special-token text kept as text
//	admit.go      a place in the bounded queue (429 when it is full), then
//	              n sequences (n choices) of the shared context
//	generate.go   one generation per choice; tokens → text → stop strings
//	              → thought/answer split → tool calls (toolcalls.go) → deltas
//	stream.go     the deltas as server-sent events, or gathered into one
//	              response
//
// The engine loop never waits for the server: it queues each request's
// tokens, and the request's own goroutine turns them into text and
// writes them. A client that goes away cancels its request's context;
// the engine drops the request within one step and the server gives its
// sequences (and with them their KV blocks) back at once.
//
// Every error has OpenAI's shape (errors.go), and one line per request
// goes to the access log (log.go), without any message content.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gollm/gollm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/semaphore"
)

// Options configure a Server. Zero values take the defaults given.
type Options struct {
	// Model is the loaded model to serve (required). The server does not
	// close it.
	Model *gollm.Model
	// ModelName is the id under which the model is listed and requested
	// (default: the file name without .gguf).
	ModelName string
	// Parallel is how many sequences answer at once, sharing every
	// forward pass (default 4). A request with n choices takes n.
	Parallel int
	// ContextSize is the shared KV cache in tokens, and the most one
	// sequence may hold (default: the model's context, at most 4096).
	ContextSize int
	// BatchSize is the most tokens per forward step (default 512).
	BatchSize int
	// KVType is "f16" (default) or "f32".
	KVType string
	// Queue is how many requests may wait for a sequence (default 256;
	// -1: none wait, a busy server answers 429 at once). Past it, requests
	// get 429 with Retry-After.
	Queue int
	// Timeout bounds each request from arrival to its last byte, the wait
	// in the queue included (default 10 minutes; -1: none).
	Timeout time.Duration
	// APIKeys, when any are given, must be sent as "Authorization: Bearer
	// KEY" to every endpoint but /health and /metrics.
	APIKeys []string
	// Limits bound what one request may ask for (defaults in
	// DefaultLimits).
	Limits Limits
	// ReasoningFormat says where a thinking model's thoughts go:
	// "deepseek" (the default; "auto" is the same) puts them in
	// reasoning_content, apart from the answer, as the DeepSeek API, vLLM
	// and llama-server do; "none" leaves them inline in content, <think>
	// tags and all. A request may choose with "reasoning_format".
	ReasoningFormat string
	// Logger receives the access log, one line per request (default:
	// slog.Default()).
	Logger *slog.Logger
	// OnStep, when set, is called after every forward step, on a
	// goroutine of its own (tracing, tests).
	OnStep func(gollm.StepTrace)
}

// Limits bound a request. Each is checked before anything is allocated
// for it, and breaking one is a 400 (413 for the body) naming the
// numbers.
type Limits struct {
	MaxBodyBytes   int64 // request body (default 8 MiB)
	MaxMessages    int   // messages in a chat request (default 1024)
	MaxStops       int   // stop strings (default 16)
	MaxStopBytes   int   // bytes in one stop string (default 256)
	MaxN           int   // choices per request (default 16, and at most Parallel)
	MaxTopLogprobs int   // top_logprobs (default 20, as OpenAI)
}

// DefaultLimits are the limits a zero Limits field takes.
func DefaultLimits() Limits {
	return Limits{MaxBodyBytes: 8 << 20, MaxMessages: 1024, MaxStops: 16, MaxStopBytes: 256, MaxN: 16, MaxTopLogprobs: 20}
}

func (l Limits) orDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxMessages <= 0 {
		l.MaxMessages = d.MaxMessages
	}
	if l.MaxStops <= 0 {
		l.MaxStops = d.MaxStops
	}
	if l.MaxStopBytes <= 0 {
		l.MaxStopBytes = d.MaxStopBytes
	}
	if l.MaxN <= 0 {
		l.MaxN = d.MaxN
	}
	if l.MaxTopLogprobs <= 0 {
		l.MaxTopLogprobs = d.MaxTopLogprobs
	}
	return l
}

// Defaults of Options.
const (
	DefaultParallel = 4
	DefaultQueue    = 256
	DefaultTimeout  = 10 * time.Minute
)

// Server answers OpenAI-style requests with one model and one shared
// context. It is safe for concurrent use.
type Server struct {
	opts    Options
	model   *gollm.Model
	name    string
	ctx     *gollm.Context
	keys    *keyring
	reg     *prometheus.Registry
	metrics *Metrics
	mux     *http.ServeMux
	log     *slog.Logger
	created int64 // Unix time, the models' "created"

	// Admission (admit.go): units of seqs are the context's free
	// sequences; waiting counts the requests queued for them.
	seqs    *semaphore.Weighted
	waiting atomic.Int64
	running atomic.Int64

	// Draining and closing (Drain, Close).
	draining atomic.Bool
	mu       sync.Mutex
	active   int             // requests under way (enter, leave)
	idle     []chan struct{} // closed when active drops to 0 while draining
	base     context.Context // cancelled by Close: ends every request
	cancel   context.CancelFunc
	closed   sync.Once

	reqSeq atomic.Uint64 // request numbers, for ids
	hooks  hooks
}

// hooks let tests follow a request without sleeping. Each is called, when
// set, on the request's goroutine.
type hooks struct {
	onQueued  func() // the request starts waiting in the queue
	onToken   func() // a choice got a token (before it is sent)
	onCancel  func() // the request's context ended while it held sequences
	onRelease func() // its sequences went back
	onLogged  func() // its log line is written
}

// New makes a server: it checks the options and creates the shared
// context (its KV cache and engine loop).
func New(o Options) (*Server, error) {
	if o.Model == nil {
		return nil, errors.New("server: Options.Model is nil")
	}
	switch {
	case o.Parallel == 0:
		o.Parallel = DefaultParallel
	case o.Parallel < 0 || o.Parallel > gollm.MaxSequences:
		return nil, fmt.Errorf("server: Parallel %d must be between 1 and %d", o.Parallel, gollm.MaxSequences)
	}
	switch {
	case o.Queue == 0:
		o.Queue = DefaultQueue
	case o.Queue < -1:
		return nil, fmt.Errorf("server: Queue %d must be -1 (no queue) or more", o.Queue)
	case o.Queue == -1:
		o.Queue = 0
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0:
		o.Timeout = 0
	}
	switch o.ReasoningFormat {
	case "", "auto", "deepseek":
		o.ReasoningFormat = "deepseek"
	case "none":
	default:
		return nil, fmt.Errorf("server: ReasoningFormat %q: use deepseek, auto or none", o.ReasoningFormat)
	}
	o.Limits = o.Limits.orDefaults()
	o.Limits.MaxN = min(o.Limits.MaxN, o.Parallel)
	keys, err := newKeyring(o.APIKeys)
	if err != nil {
		return nil, err
	}
	if o.ModelName == "" {
		o.ModelName = strings.TrimSuffix(filepath.Base(o.Model.Path()), ".gguf")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{opts: o, model: o.Model, name: o.ModelName, keys: keys, log: o.Logger,
		seqs: semaphore.NewWeighted(int64(o.Parallel)), created: time.Now().Unix()}
	// The step hook reads s.metrics, which exists only once the context
	// does; steps start only after requests come, after New returns.
	var metrics atomic.Pointer[Metrics]
	s.ctx, err = o.Model.NewContext(gollm.ContextOptions{Sequences: o.Parallel, ContextSize: o.ContextSize,
		BatchSize: o.BatchSize, KVType: o.KVType, OnStep: func(tr gollm.StepTrace) {
			if m := metrics.Load(); m != nil {
				m.Step(tr.StepInfo)
			}
			if o.OnStep != nil {
				o.OnStep(tr)
			}
		}})
	if err != nil {
		return nil, err
	}
	s.reg = prometheus.NewRegistry()
	s.metrics = NewMetrics(s.reg, s.ctx, s.name)
	metrics.Store(s.metrics)
	s.base, s.cancel = context.WithCancel(context.Background())
	s.routes()
	return s, nil
}

// routes registers the endpoints. Method and path patterns are the
// standard library's (Go 1.22): a wrong method gets 405, an unknown path
// 404, both in OpenAI's error shape (see notFound).
func (s *Server) routes() {
	mux := http.NewServeMux()
	api := func(endpoint string, h http.HandlerFunc) http.Handler { return s.authorized(s.tracked(endpoint, h)) }
	mux.Handle("POST /v1/chat/completions", api("chat", s.chatCompletions))
	mux.Handle("POST /v1/completions", api("completions", s.completions))
	mux.Handle("GET /v1/models", api("", s.listModels))
	mux.Handle("GET /v1/models/{id...}", api("", s.getModel))
	mux.Handle("POST /tokenize", api("", s.tokenize))
	mux.Handle("POST /detokenize", api("", s.detokenize))
	mux.HandleFunc("GET /health", s.health)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	// Anything else: 405 for a known path, 404 for the rest.
	known := map[string]string{"/v1/chat/completions": "POST", "/v1/completions": "POST", "/v1/models": "GET",
		"/tokenize": "POST", "/detokenize": "POST", "/health": "GET", "/metrics": "GET"}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if m, ok := known[r.URL.Path]; ok {
			w.Header().Set("Allow", m)
			writeError(w, errorf(http.StatusMethodNotAllowed, "", "method_not_allowed", "%s takes %s, not %s", r.URL.Path, m, shorten(r.Method, 20)))
			return
		}
		writeError(w, errorf(http.StatusNotFound, "", "unknown_url", "unknown request URL: %s %s", shorten(r.Method, 20), shorten(r.URL.Path, 80)))
	})
	s.mux = mux
}

// Handler is the server's HTTP handler: every endpoint, with the access
// log around it.
func (s *Server) Handler() http.Handler { return s.logged(s.mux) }

// Context is the shared context (for its statistics).
func (s *Server) Context() *gollm.Context { return s.ctx }

// ModelName is the id the model is served under.
func (s *Server) ModelName() string { return s.name }

// Load reports the requests waiting for a sequence and those holding
// sequences now.
func (s *Server) Load() (waiting, running int) {
	return int(s.waiting.Load()), int(s.running.Load())
}

// health answers 200 when the server takes requests, 503 while it drains.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, errorf(http.StatusServiceUnavailable, "", "draining", "the server is shutting down"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Drain stops taking requests (health turns 503, new requests get 503)
// and waits until those under way have finished, or ctx ends; then the
// requests still running are cancelled and ctx's error is returned.
func (s *Server) Drain(ctx context.Context) error {
	done := s.stopTaking()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-done
		return ctx.Err()
	}
}

// Close cancels every request under way, waits for them to end and
// closes the shared context. The model stays open.
func (s *Server) Close() error {
	s.closed.Do(func() {
		done := s.stopTaking()
		s.cancel()
		<-done
		s.ctx.Close()
	})
	return nil
}

// StartDrain turns draining on (as Drain does first) and returns at
// once: health answers 503 and new requests are refused from now on.
func (s *Server) StartDrain() { s.stopTaking() }

// Draining reports whether Drain or Close was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// enter counts a request in, unless the server is draining.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.active++
	return true
}

// leave counts a request out.
func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 {
		for _, c := range s.idle {
			close(c)
		}
		s.idle = nil
	}
}

// stopTaking turns draining on and returns a channel closed once no
// request is under way.
func (s *Server) stopTaking() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining.Store(true)
	c := make(chan struct{})
	if s.active == 0 {
		close(c)
	} else {
		s.idle = append(s.idle, c)
	}
	return c
}

// Loading is the handler to serve while the model loads, before New
// returns: /health and every other path answer 503 in OpenAI's error
// shape, so that a load balancer waits and a client knows to retry.
func Loading() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := errorf(http.StatusServiceUnavailable, "", "loading", "the model is loading")
		e.retry = 1
		writeError(w, e)
	})
}
