package gollm

import (
	"context"
	"fmt"
)

// LogitsOptions control Logits.
type LogitsOptions struct {
	KVType    string // "f32" (default here: like the golden runs) or "f16"
	BatchSize int    // default: every token in one forward step, at most 4096
}

// Logits evaluates tokens from position 0 in a fresh sequence and returns
// the logits row of every position: row i predicts token i+1. It is the
// tool behind `gollm logits`, for studying and checking the model.
func Logits(ctx context.Context, m *Model, ids []int32, o LogitsOptions) ([][]float32, error) {
	if o.KVType == "" {
		o.KVType = "f32"
	}
	if o.BatchSize == 0 {
		o.BatchSize = min(len(ids), 4096)
	}
	vocab := m.net.Config.Vocab
	for i, t := range ids {
		if t < 0 || int(t) >= vocab {
			return nil, fmt.Errorf("gollm: token %d at index %d is outside the vocabulary of %d", t, i, vocab)
		}
	}
	c, err := m.NewContext(ContextOptions{Sequences: 1, BatchSize: o.BatchSize, ContextSize: len(ids), KVType: o.KVType, everyLogits: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	seq, err := c.Sequence()
	if err != nil {
		return nil, err
	}
	defer seq.Close()
	rows := make([][]float32, 0, len(ids))
	err = seq.evaluateAll(ctx, ids, func(row []float32) { rows = append(rows, row) })
	return rows, err
}
