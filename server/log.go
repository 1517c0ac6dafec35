package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// The access log: one line per request, when it ends, with no message
// content:
//
//	level=INFO msg=request id=req-3f2a9c-17 method=POST path=/v1/chat/completions
//	  status=200 prompt_tokens=41 cached_tokens=32 generated_tokens=12
//	  ttft=18.2ms duration=96.4ms finish=stop
//
// A client that went away before the end is logged with status 499 (as
// nginx does): nothing more could be sent to it.

// statusClientGone is the status logged when the client disconnected.
const statusClientGone = 499

// record is what the log line of one request says. The handlers fill it
// in through the request's context.
type record struct {
	id                        string
	start                     time.Time
	status                    int
	prompt, cached, generated int
	ttft                      time.Duration
	finish                    string
	gone                      bool // the client disconnected
}

type recordKey struct{}

// requestRecord is the request's record (a throwaway one outside logged).
func requestRecord(ctx context.Context) *record {
	if r, ok := ctx.Value(recordKey{}).(*record); ok {
		return r
	}
	return &record{start: time.Now()}
}

// statusWriter notes the status sent. Unwrap lets http.ResponseController
// reach the connection's Flush.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged gives each request an id (sent back as X-Request-Id) and a
// record, and logs the record when the request ends.
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &record{id: fmt.Sprintf("req-%06x-%d", s.created&0xffffff, s.reqSeq.Add(1)), start: time.Now()}
		w.Header().Set("X-Request-Id", rec.id)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// A bug must not take the process down with every other
			// request: the client gets a 500 (if nothing was sent yet),
			// the log the stack. http.ErrAbortHandler is net/http's own
			// way to abort a response, and goes on up.
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic", slog.String("id", rec.id), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				if sw.status == 0 {
					writeError(sw, errorf(http.StatusInternalServerError, "", "", "internal error (request %s)", rec.id))
				}
			}
			rec.status = sw.status
			if rec.gone {
				rec.status = statusClientGone
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("id", rec.id), slog.String("method", r.Method), slog.String("path", shorten(r.URL.Path, 200)),
				slog.Int("status", rec.status), slog.Int("prompt_tokens", rec.prompt), slog.Int("cached_tokens", rec.cached),
				slog.Int("generated_tokens", rec.generated), slog.Duration("ttft", rec.ttft),
				slog.Duration("duration", time.Since(rec.start)), slog.String("finish", rec.finish))
			if s.hooks.onLogged != nil {
				s.hooks.onLogged()
			}
		}()
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), recordKey{}, rec)))
	})
}

// tracked wraps an API endpoint: it refuses requests while the server
// drains, counts those under way for Drain, bounds each by the timeout,
// ends it when the server closes, and reports inference requests
// (endpoint "chat" or "completions") to the metrics.
func (s *Server) tracked(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			w.Header().Set("Connection", "close")
			writeError(w, errorf(http.StatusServiceUnavailable, "", "draining", "the server is shutting down and takes no new requests"))
			return
		}
		defer s.leave()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		if s.opts.Timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, s.opts.Timeout)
			defer cancel()
		}
		stop := context.AfterFunc(s.base, cancel)
		defer stop()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r.WithContext(ctx))
		if endpoint != "" {
			rec := requestRecord(ctx)
			status := sw.status
			if rec.gone {
				status = statusClientGone
			}
			s.metrics.RequestDone(RequestRecord{Endpoint: endpoint, Status: status, PromptTokens: rec.prompt,
				CachedTokens: rec.cached, GeneratedTokens: rec.generated, TTFT: rec.ttft,
				Duration: time.Since(rec.start), Finish: rec.finish})
		}
	}
}
