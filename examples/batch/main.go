// Command batch is node-llama-cpp's batching example (batch.js) in Go:
// one model, one context with two sequences, a chat session on each, and
// both questions asked at once. errgroup plays the part of Promise.all.
// Both prompts are evaluated in the same forward passes, so the two
// answers take about the time of one.
//
//	go run ./examples/batch                      # built-in demo model (random weights: its text is noise)
//	go run ./examples/batch -model DeepSeek-R1-0528-Qwen3-8B-Q6_K.gguf
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	"github.com/gollm/gollm"
	"golang.org/x/sync/errgroup"
)

func main() {
	modelPath := flag.String("model", "", "GGUF model (default: the built-in demo model)")
	maxTokens := flag.Int("max-tokens", 0, "most tokens per answer (default: until the model stops; 48 for the demo model)")
	flag.Parse()
	if *modelPath == "" {
		p, err := gollm.DemoModelPath(context.Background())
		if err != nil {
			log.Fatal(err)
		}
		*modelPath = p
		if *maxTokens == 0 {
			*maxTokens = 48
		}
		log.Print("no -model given: using the built-in demo model (random weights, so the answers are noise)")
	}

	model, err := gollm.LoadModel(*modelPath, gollm.ModelOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()

	llmContext, err := model.NewContext(gollm.ContextOptions{
		Sequences: 2,
		BatchSize: 1024, // the most tokens one forward pass evaluates
	})
	if err != nil {
		log.Fatal(err)
	}
	defer llmContext.Close()

	sequence1, err := llmContext.Sequence()
	if err != nil {
		log.Fatal(err)
	}
	sequence2, err := llmContext.Sequence()
	if err != nil {
		log.Fatal(err)
	}
	session1 := gollm.NewChatSession(sequence1, gollm.ChatOptions{})
	session2 := gollm.NewChatSession(sequence2, gollm.ChatOptions{})

	q1 := "Hi there, how are you?"
	q2 := "How much is 6+6?"

	// Promise.all: both prompts run at once and share forward passes.
	var a1, a2 string
	var g errgroup.Group
	ctx := context.Background()
	opts := gollm.PromptOptions{MaxTokens: *maxTokens}
	g.Go(func() (err error) { a1, err = session1.Prompt(ctx, q1, opts); return err })
	g.Go(func() (err error) { a2, err = session2.Prompt(ctx, q2, opts); return err })
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}

	fmt.Println("User: " + q1)
	fmt.Println("AI: " + a1)
	fmt.Println()
	fmt.Println("User: " + q2)
	fmt.Println("AI: " + a2)
}
