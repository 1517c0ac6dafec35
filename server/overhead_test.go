package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/sample"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestServeOverhead measures what HTTP, JSON and SSE cost: N clients
// stream greedy chat answers from the server, and the same N prompts go
// through the library directly (a ChatSession per prompt on a context of
// N sequences), in alternating rounds, each on a fresh context (so the
// prefix cache helps neither). Both make the same tokens; the figure is
// the server's tokens per second against the library's.
//
// It is a measurement, not a test: it runs only when GOLLM_BENCH_MODEL
// names a model (bench/serve-compare.sh synthesizes one) and never
// fails on the numbers. GOLLM_BENCH_CLIENTS (default 8),
// GOLLM_BENCH_TOKENS (default 32) and GOLLM_BENCH_ROUNDS (default 3)
// shape it.
func TestServeOverhead(t *testing.T) {
	path := os.Getenv("GOLLM_BENCH_MODEL")
	if path == "" {
		t.Skip("set GOLLM_BENCH_MODEL to a model file (see bench/serve-compare.sh)")
	}
	env := func(name string, def int) int {
		if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
			return n
		}
		return def
	}
	clients, tokens, rounds := env("GOLLM_BENCH_CLIENTS", 8), env("GOLLM_BENCH_TOKENS", 32), env("GOLLM_BENCH_ROUNDS", 3)
	m, err := gollm.LoadModel(path, gollm.ModelOptions{GPU: gollm.GPUNone})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompts := make([]string, clients)
	for i := range prompts {
		prompts[i] = fmt.Sprintf("Request %d: explain in a few words why %d is or is not a prime number.", i, 97+2*i)
	}
	const ctxSize = 4096

	library := func() (int, time.Duration) {
		c, err := m.NewContext(gollm.ContextOptions{Sequences: clients, ContextSize: ctxSize})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		greedy := sample.GreedyParams()
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		start := time.Now()
		for _, p := range prompts {
			wg.Go(func() {
				seq, err := c.WaitSequence(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				defer seq.Close()
				res, err := gollm.NewChatSession(seq, gollm.ChatOptions{}).PromptWithMeta(context.Background(), p,
					gollm.PromptOptions{MaxTokens: tokens, Sampling: &greedy})
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += len(res.GeneratedIDs)
				mu.Unlock()
			})
		}
		wg.Wait()
		return total, time.Since(start)
	}
	served := func() (int, time.Duration) {
		s, err := New(Options{Model: m, Parallel: clients, ContextSize: ctxSize, Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		hs := httptest.NewServer(s.Handler())
		defer hs.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: clients}
		defer tr.CloseIdleConnections()
		client := openai.NewClient(option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey("x"), option.WithMaxRetries(0),
			option.WithHTTPClient(&http.Client{Transport: tr}))
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		start := time.Now()
		for _, p := range prompts {
			wg.Go(func() {
				params := greedyChat(p, int64(tokens))
				params.Model = s.ModelName()
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
				st := client.Chat.Completions.NewStreaming(context.Background(), params)
				defer st.Close()
				n := 0
				for st.Next() {
					if u := st.Current().Usage; u.CompletionTokens > 0 {
						n = int(u.CompletionTokens)
					}
				}
				if err := st.Err(); err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		wg.Wait()
		return total, time.Since(start)
	}

	library() // warm-up: pages the weights in
	var libRates, srvRates []float64
	for r := range rounds {
		ln, ld := library()
		sn, sd := served()
		if ln != sn {
			t.Errorf("round %d: the library made %d tokens, the server %d", r, ln, sn)
		}
		libRates = append(libRates, float64(ln)/ld.Seconds())
		srvRates = append(srvRates, float64(sn)/sd.Seconds())
		t.Logf("round %d: library %d tokens in %v (%.1f tok/s), server %d tokens in %v (%.1f tok/s)",
			r, ln, ld.Round(time.Millisecond), libRates[r], sn, sd.Round(time.Millisecond), srvRates[r])
	}
	lib, srv := median(libRates), median(srvRates)
	t.Logf("%d clients, %d tokens each, %d rounds: library %.1f tok/s, server %.1f tok/s (medians): overhead %.1f%%",
		clients, tokens, rounds, lib, srv, 100*(1-srv/lib))
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s[len(s)/2]
}
