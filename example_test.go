package gollm_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/sample"
	"golang.org/x/sync/errgroup"
)

// Two conversations answered at once, as in node-llama-cpp's batching
// example: the prompts share forward steps. (The test model has random
// weights, so the example prints counts rather than its noisy text.)
func Example() {
	model, err := gollm.LoadModel("testdata/models/qwen3-tiny-q6k.gguf", gollm.ModelOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()
	ctx, err := model.NewContext(gollm.ContextOptions{Sequences: 2, BatchSize: 1024, ContextSize: 2048})
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	seq1, _ := ctx.Sequence()
	seq2, _ := ctx.Sequence()
	chat1 := gollm.NewChatSession(seq1, gollm.ChatOptions{})
	chat2 := gollm.NewChatSession(seq2, gollm.ChatOptions{})

	greedy := sample.GreedyParams()
	opts := gollm.PromptOptions{MaxTokens: 8, Sampling: &greedy}
	var r1, r2 gollm.Response
	var g errgroup.Group
	g.Go(func() (err error) {
		r1, err = chat1.PromptWithMeta(context.Background(), "Hi there, how are you?", opts)
		return err
	})
	g.Go(func() (err error) {
		r2, err = chat2.PromptWithMeta(context.Background(), "How much is 6+6?", opts)
		return err
	})
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(r1.GeneratedIDs), r1.FinishReason)
	fmt.Println(len(r2.GeneratedIDs), r2.FinishReason)
	// Output:
	// 8 length
	// 8 length
}

// Streaming: OnChunk receives the text as it is generated, with thinking
// and answer kept apart.
func ExampleChatSession_PromptWithMeta() {
	model, err := gollm.LoadModel("testdata/models/qwen3-tiny-q6k.gguf", gollm.ModelOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()
	ctx, _ := model.NewContext(gollm.ContextOptions{ContextSize: 512})
	defer ctx.Close()
	seq, _ := ctx.Sequence()
	session := gollm.NewChatSession(seq, gollm.ChatOptions{SystemPrompt: "Be brief."})
	chunks := 0
	r, err := session.PromptWithMeta(context.Background(), "How much is 6+6?", gollm.PromptOptions{
		MaxTokens: 5,
		OnChunk:   func(c gollm.Chunk) { chunks++ },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(r.GeneratedIDs), "tokens,", len(session.History()), "messages in the history")
	// Output: 5 tokens, 3 messages in the history
}

// A Sequence can be driven with token ids directly, without a template.
func ExampleSequence_Generate() {
	model, err := gollm.LoadModel("testdata/models/qwen3-tiny-mixed.gguf", gollm.ModelOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()
	ctx, _ := model.NewContext(gollm.ContextOptions{ContextSize: 256})
	defer ctx.Close()
	seq, _ := ctx.Sequence()
	greedy := sample.GreedyParams()
	g, err := seq.Generate(context.Background(), model.Tokenize("The quick brown fox", false), gollm.GenerateOptions{MaxTokens: 4, Sampling: &greedy})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(g.Tokens), g.FinishReason, len(seq.Tokens()))
	// Output: 4 length 11
}

// Loading with a context (Ctrl-C or a deadline stops it), a logger for
// the library's notices, and a progress callback, here kept to its last
// value. A nil Logger writes nothing; slog.Default() at its usual Info
// level shows only what a user may want to act on (such as the fallback
// to the CPU when a GPU was asked for), and Debug adds the routine.
func ExampleLoadModelContext() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	var done, total int64
	model, err := gollm.LoadModelContext(ctx, "testdata/models/qwen3-tiny-q6k.gguf", gollm.ModelOptions{
		GPU:        gollm.GPUNone,
		Logger:     slog.Default(),
		OnProgress: func(d, t int64) { done, total = d, t }, // a progress bar would redraw here
	})
	if err != nil {
		log.Fatal(err) // context.Canceled after Ctrl-C
	}
	defer model.Close()
	fmt.Println("weights checked:", done == total && total > 0)
	// Output: weights checked: true
}
