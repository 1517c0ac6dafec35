package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/internal/demo"
	"github.com/gollm/gollm/server"
)

func init() {
	register(command{name: "serve", summary: "an OpenAI-compatible HTTP server; concurrent requests share every forward pass", run: serveCmd})
}

const serveHelp = `Usage: gollm serve [--model FILE|hf:REPO:QUANT] [--host 127.0.0.1] [--port 8080] [--parallel N]
                   [--ctx N] [--api-key KEY|@FILE ...] [--timeout D] [--drain-timeout D]
                   [--queue N] [--threads N] [flags]

Serves the model over HTTP with OpenAI's API:

  POST /v1/chat/completions   chat, streamed (SSE) or not
  POST /v1/completions        a raw prompt (text or token ids)
  GET  /v1/models             the model (GET /v1/models/{id}: one)
  POST /tokenize, /detokenize llama-server's shapes
  GET  /health                200 when ready, 503 while loading or draining
  GET  /metrics               Prometheus metrics

--parallel sequences answer at once, in one shared KV cache of --ctx
tokens: every request being answered contributes its tokens to the same
forward passes. More requests wait in a queue of --queue; past it they
get 429 with Retry-After. A request with "n": k takes k sequences.

It listens on loopback unless --host says otherwise. With --api-key
(repeatable; @FILE reads one key per line; the GOLLM_API_KEY environment
variable adds one), every endpoint but /health and /metrics needs
"Authorization: Bearer KEY".

Thinking models' thoughts go to "reasoning_content", apart from the
answer (--reasoning-format deepseek, the default, like llama-server);
--reasoning-format none leaves them inline in "content". A request may
choose with "reasoning_format".

SIGTERM (or Ctrl-C) drains: /health turns 503, new requests get 503, the
requests under way finish (for at most --drain-timeout, then they are
cancelled), and the process exits 0.

One access-log line per request goes to stderr (--log-format text or
json): id, status, prompt, cached and generated tokens, time to first
token and duration; never message content. The model's notices go to
the same log: at Info what needs attention (no GPU used although
--gpu auto was given, a model split between GPU and CPU), and with -v
the routine too (why no GPU is used on a CPU-only machine).

Without --model it serves the built-in demo model (random weights).

Flags:
`

type serveFlags struct {
	model, host, kvType, reasoning, logFormat, alias string
	keys                                             multiFlag
	port, parallel, ctxSize, batchSize, threads      int
	queue, maxBodyMiB                                int
	timeout, drainTimeout                            time.Duration
	gpu                                              gpuFlags
}

// maxDuration bounds --timeout and --drain-timeout.
const maxDuration = 24 * time.Hour

func serveCmd(args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlags("serve", stderr)
	fs.Usage = func() { printHelp(fs, serveHelp) }
	fs.StringVar(&f.model, "model", "", "GGUF model file, or hf:REPO:QUANT for one gollm pull got (default: the built-in demo model, random weights)")
	fs.StringVar(&f.alias, "alias", "", "the model's id in the API (default: the file name without .gguf)")
	fs.StringVar(&f.host, "host", "127.0.0.1", "address to listen on (0.0.0.0: every interface)")
	fs.IntVar(&f.port, "port", 8080, "port to listen on (0: any free port; the address is printed)")
	fs.IntVar(&f.parallel, "parallel", server.DefaultParallel, fmt.Sprintf("sequences answering at once (1 to %d)", gollm.MaxSequences))
	fs.IntVar(&f.ctxSize, "ctx", 0, "tokens in the shared KV cache, and the most one request may use (default: the model's context, at most 4096 per sequence and half the memory)")
	fs.IntVar(&f.batchSize, "batch-size", gollm.DefaultBatchSize, "most tokens per forward step")
	fs.StringVar(&f.kvType, "kv-type", "f16", "KV cache element type: f16 or f32")
	threads := threadsFlag(fs)
	fs.Var(&f.keys, "api-key", "API key clients must send as a Bearer token (repeatable; @FILE: one key per line)")
	fs.DurationVar(&f.timeout, "timeout", server.DefaultTimeout, "longest a request may take, queue included (0: no limit)")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long requests under way may take to finish")
	fs.IntVar(&f.queue, "queue", server.DefaultQueue, "requests that may wait for a sequence (0: none; past it, 429)")
	fs.IntVar(&f.maxBodyMiB, "max-body-mib", 8, "largest request body, in MiB")
	fs.StringVar(&f.reasoning, "reasoning-format", "deepseek", "thoughts of thinking models: deepseek (in reasoning_content) or none (inline in content)")
	fs.StringVar(&f.logFormat, "log-format", "text", "access log format: text or json")
	f.gpu.register(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	f.threads = *threads
	keys, err := f.check()
	if err != nil {
		return err
	}
	mo := gollm.ModelOptions{Threads: f.threads}
	if err := f.gpu.apply(&mo, stderr); err != nil {
		return err
	}
	// One log for the server and the library: the access log and the
	// model's notices at Info, with -v the Debug ones too.
	hopts := &slog.HandlerOptions{Level: f.gpu.level()}
	var handler slog.Handler = slog.NewTextHandler(stderr, hopts)
	if f.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, hopts)
	}
	logger := slog.New(handler)
	mo.Logger = logger

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	// Listen first: the port is taken (or refused) at once, and /health
	// answers 503 while the model loads.
	ln, err := net.Listen("tcp", net.JoinHostPort(f.host, strconv.Itoa(f.port)))
	if err != nil {
		return err
	}
	var ready atomic.Pointer[http.Handler]
	loading := server.Loading()
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h := ready.Load(); h != nil {
				(*h).ServeHTTP(w, r)
				return
			}
			loading.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stderr, "gollm serve: listening on http://%s\n", ln.Addr())
	defer hs.Close()

	path, err := modelPath(f.model)
	if err != nil {
		return err
	}
	if path == "" {
		fmt.Fprintln(stderr, "gollm serve: no --model given, so this serves the built-in demo model (random weights: its text is noise)")
		if path, _, err = demo.PathContext(ctx); err != nil {
			return fmt.Errorf("making the demo model: %w", err)
		}
	}
	m, err := gollm.LoadModelContext(ctx, path, mo) // Ctrl-C stops the load too
	if err != nil {
		return err
	}
	defer m.Close()
	if f.ctxSize == 0 {
		var capped bool
		f.ctxSize, capped = defaultContext(m.Config(), f.parallel, f.kvType)
		if capped {
			fmt.Fprintf(stderr, "gollm serve: --ctx defaults to %d tokens, what half of this machine's memory holds (set --ctx to choose)\n", f.ctxSize)
		}
	}
	timeout := f.timeout
	if timeout == 0 {
		timeout = -1 // the server's "no limit"
	}
	queue := f.queue
	if queue == 0 {
		queue = -1 // the server's "no queue"
	}
	srv, err := server.New(server.Options{Model: m, ModelName: f.alias, Parallel: f.parallel, ContextSize: f.ctxSize,
		BatchSize: f.batchSize, KVType: f.kvType, Queue: queue, Timeout: timeout, APIKeys: keys,
		Limits: server.Limits{MaxBodyBytes: int64(f.maxBodyMiB) << 20}, ReasoningFormat: f.reasoning, Logger: logger})
	if err != nil {
		return err
	}
	defer srv.Close()
	h := srv.Handler()
	ready.Store(&h)
	fmt.Fprintf(stderr, "gollm serve: ready: model %q (%s), %d sequences, %d-token context, on http://%s\n",
		srv.ModelName(), m.Backend(), f.parallel, srv.Context().Options().ContextSize, ln.Addr())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills as usual
	srv.StartDrain()
	fmt.Fprintf(stderr, "gollm serve: draining: no new requests; waiting up to %v for those under way\n", f.drainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), f.drainTimeout)
	defer cancel()
	if err := srv.Drain(dctx); err != nil {
		fmt.Fprintf(stderr, "gollm serve: drain timeout: the requests still running were cancelled\n")
	}
	sctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	fmt.Fprintln(stderr, "gollm serve: stopped")
	return nil
}

// check validates the flags that need no model and gathers the keys.
func (f *serveFlags) check() ([]string, error) {
	if err := checkModelRef(f.model); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		name      string
		v, lo, hi int64
	}{
		{"port", int64(f.port), 0, 65535},
		{"parallel", int64(f.parallel), 1, gollm.MaxSequences},
		{"ctx", int64(f.ctxSize), 0, maxTokensFlag},
		{"batch-size", int64(f.batchSize), 1, maxTokensFlag},
		{"queue", int64(f.queue), 0, 1 << 20},
		{"max-body-mib", int64(f.maxBodyMiB), 1, 1024},
	} {
		if err := checkRange(c.name, c.v, c.lo, c.hi); err != nil {
			return nil, err
		}
	}
	if err := checkThreads(f.threads); err != nil {
		return nil, err
	}
	if err := checkKVType(f.kvType); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", f.timeout}, {"drain-timeout", f.drainTimeout}} {
		if d.v < 0 || d.v > maxDuration {
			return nil, fmt.Errorf("%w: --%s must be between 0 and %v, not %v", errUsage, d.name, maxDuration, d.v)
		}
	}
	if f.host == "" {
		return nil, fmt.Errorf("%w: --host is empty (127.0.0.1: this machine only; 0.0.0.0: every interface)", errUsage)
	}
	switch f.reasoning {
	case "deepseek", "auto", "none":
	default:
		return nil, fmt.Errorf("%w: --reasoning-format is deepseek, auto or none, not %s", errUsage, quote(f.reasoning))
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return nil, fmt.Errorf("%w: --log-format is text or json, not %s", errUsage, quote(f.logFormat))
	}
	var keys []string
	for _, k := range f.keys {
		if file, ok := strings.CutPrefix(k, "@"); ok {
			data, err := readInput("api-key", file)
			if err != nil {
				return nil, err
			}
			n := len(keys)
			for _, line := range strings.Split(string(data), "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					keys = append(keys, line)
				}
			}
			if len(keys) == n {
				return nil, fmt.Errorf("%w: --api-key @%s: the file has no key", errUsage, shorten(file))
			}
			continue
		}
		if k == "" || strings.TrimSpace(k) != k || strings.ContainsAny(k, " \t\r\n") {
			return nil, fmt.Errorf("%w: --api-key is empty or has white space in it", errUsage)
		}
		keys = append(keys, k)
	}
	if env := strings.TrimSpace(os.Getenv("GOLLM_API_KEY")); env != "" {
		keys = append(keys, env)
	}
	for _, k := range keys {
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%w: an API key has white space in it", errUsage)
		}
	}
	return keys, nil
}
