package server

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestLoad is the bounded load test: 64 streaming clients send 4
// requests each (4 rounds of 64 at once) to a server answering 8 at a
// time. Every request must be answered (0 errors, 0 lost), each greedy
// answer must be the one its prompt gets alone, the engine's steps must
// carry several sequences at once, and the live heap after round 3 must
// be within 10% of the heap after round 1 (nothing grows per request).
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("the load test takes a few seconds")
	}
	const (
		clients   = 64
		rounds    = 4
		parallel  = 8
		maxTokens = 6
		prompts   = 16
	)
	var steps countingSteps
	ts := newTestServer(t, qwenModel, Options{Parallel: parallel, ContextSize: 2048, OnStep: steps.add})
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := openai.NewClient(option.WithBaseURL(ts.http.URL+"/v1/"), option.WithAPIKey("x"), option.WithMaxRetries(0),
		option.WithHTTPClient(&http.Client{Transport: tr}))
	question := func(i int) string {
		return fmt.Sprintf("Question %d: what is %d times %d, and why?", i, i+2, i*3+1)
	}

	// The solo answers, one request at a time.
	solo := make([]string, prompts)
	for i := range solo {
		content, _, finish, _ := streamChat(t, client, greedyChat(question(i), maxTokens))
		if finish[0] == "" {
			t.Fatalf("prompt %d: no finish reason", i)
		}
		solo[i] = content[0]
	}
	steps.mu.Lock()
	soloSteps := steps.steps
	steps.steps, steps.multi, steps.maxSeqs, steps.seqsHistogram = 0, 0, 0, nil // count the load alone
	steps.mu.Unlock()

	var heap [rounds]uint64
	errs := 0
	var mu sync.Mutex
	for round := range rounds {
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				p := (c + round) % prompts
				ans, err := streamOnce(client, greedyChat(question(p), maxTokens))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs++
					t.Errorf("round %d client %d: %v", round, c, err)
				case ans != solo[p]:
					errs++
					t.Errorf("round %d client %d: prompt %d answered %q, alone %q", round, c, p, ans, solo[p])
				}
			})
		}
		wg.Wait()
		// Twice: objects with finalizers (the previous tests' closed
		// connections, say) are freed only by the collection after the
		// one that found them.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap[round] = ms.HeapAlloc
	}
	if errs > 0 {
		t.Fatalf("%d of %d requests failed or differed", errs, clients*rounds)
	}
	steps.mu.Lock()
	defer steps.mu.Unlock()
	loadSteps := steps.steps
	var hist []string
	var keys []int
	for k := range steps.seqsHistogram {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		hist = append(hist, fmt.Sprintf("%d seqs: %d steps", k, steps.seqsHistogram[k]))
	}
	t.Logf("%d requests in %d steps (plus %d solo); %d steps carried more than one sequence, at most %d; %v",
		clients*rounds, loadSteps, soloSteps, steps.multi, steps.maxSeqs, hist)
	t.Logf("live heap after each round: %v bytes", heap)
	if steps.maxSeqs < parallel || steps.multi < loadSteps/2 {
		t.Errorf("steps did not carry several sequences: at most %d in one step, %d of %d steps with more than one", steps.maxSeqs, steps.multi, loadSteps)
	}
	if d := float64(heap[2]) - float64(heap[0]); d > 0.1*float64(heap[0]) || d < -0.1*float64(heap[0]) {
		t.Errorf("live heap after round 3 is %d bytes, after round 1 %d: more than 10%% apart", heap[2], heap[0])
	}
	if w, r := ts.Load(); w != 0 || r != 0 {
		t.Errorf("%d waiting and %d running after the load", w, r)
	}
}

// streamOnce streams one chat answer and returns its content; a stream
// without a finish reason is an error (a lost response).
func streamOnce(c openai.Client, p openai.ChatCompletionNewParams) (string, error) {
	st := c.Chat.Completions.NewStreaming(context.Background(), p)
	defer st.Close()
	var content, finish string
	for st.Next() {
		for _, ch := range st.Current().Choices {
			content += ch.Delta.Content
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
	}
	if err := st.Err(); err != nil {
		return content, err
	}
	if finish == "" {
		return content, fmt.Errorf("the stream ended without a finish reason")
	}
	return content, nil
}
