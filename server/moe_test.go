package server

import (
	"context"
	"sync"
	"testing"
)

// moeModel is the qwen3moe fixture: a mixture of experts (8 experts, 2
// per token) with the Qwen3 template.
const moeModel = "qwen3moe-tiny-q6k"

// TestChatMoE: the server answers with a mixture-of-experts model, two
// requests in the same forward passes, each with the library's own
// answer computed alone.
func TestChatMoE(t *testing.T) {
	ts := newTestServer(t, moeModel, Options{Parallel: 2})
	prompts := []string{"Hi there, how are you?", "How much is 6+6?"}
	var wg sync.WaitGroup
	got := make([]string, len(prompts))
	errs := make([]error, len(prompts))
	for i, p := range prompts {
		wg.Go(func() {
			params := greedyChat(p, 12)
			params.Model = moeModel
			resp, err := ts.client.Chat.Completions.New(context.Background(), params)
			if err == nil {
				got[i] = resp.Choices[0].Message.Content
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, p := range prompts {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		lib := libraryAnswer(t, moeModel, p, 12)
		if want := asJSON(lib.Raw); got[i] != want || lib.Raw == "" {
			t.Errorf("%q: server %q, library alone %q", p, got[i], want)
		}
	}
}
