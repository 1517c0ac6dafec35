package sample_test

import (
	"fmt"

	"github.com/gollm/gollm/sample"
)

// A sequence's sampler sees the prompt, then picks and accepts one token
// per step.
func Example() {
	p := sample.DefaultParams()
	p.Seed = 7
	p.RepeatPenalty = 1.1
	s, err := sample.New(p)
	if err != nil {
		panic(err)
	}
	prompt := []int32{3, 1, 4}
	s.AcceptAll(prompt) // the penalties see the prompt too

	logits := []float32{0.5, 2.0, -1.0, 1.5, 0.1} // one row from the model
	for range 3 {
		id, err := s.TrySample(logits)
		if err != nil {
			panic(err)
		}
		s.Accept(id)
		// ... feed id to the model, get the next row of logits ...
	}

	// The caller's row is left as it was, e.g. for printing the top 3.
	fmt.Println(sample.TopK(logits, 3))
	// Output: [{1 2} {3 1.5} {0 0.5}]
}
