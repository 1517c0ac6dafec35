package model

import (
	"fmt"

	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/tensor"
)

// Script is one sequence's part in Replay: its prompt, fed in chunks of
// Chunk tokens (0: all at once), then Decode fed one token per step, as a
// generating sequence would feed back its sampled tokens.
type Script struct {
	Prompt []int32
	Decode []int32
	Chunk  int
}

// Replay runs scripts together in a fresh state, the way the scheduler
// packs them: every step carries each unfinished sequence's next piece of
// work (its next prompt chunk, or its next decode token), so prefill and
// decode tokens of different sequences share forward steps. It returns,
// for every script, the logits rows of its last prompt token and of each
// decode token, (script, step) → (vocab).
//
// It drives Forward directly with flat batches, which makes it the
// shortest complete example of the model's API, and it is how the tests
// show batch invariance: a script's rows are bit-identical whether it is
// replayed alone, in other chunks, or next to other scripts.
func (m *Model) Replay(kv tensor.DType, scripts ...Script) ([][][]float32, error) {
	// Room for every token: each sequence rounds up to whole blocks.
	const bs = kvcache.DefaultBlockSize
	tokens, capacity := 0, 0
	for _, sc := range scripts {
		n := len(sc.Prompt) + len(sc.Decode)
		tokens += n
		capacity += (n + bs - 1) / bs * bs
	}
	s, err := m.NewState(StateOptions{Capacity: max(capacity, 1), BlockSize: bs, KVType: kv, MaxBatch: max(tokens, 1)})
	if err != nil {
		return nil, err
	}
	done := make([]int, len(scripts)) // tokens fed per script
	for k, sc := range scripts {
		if len(sc.Prompt) == 0 {
			return nil, fmt.Errorf("%w: script %d has no prompt", ErrBatch, k)
		}
		s.KV.AddSeq(flat.SeqID(k))
	}
	V := m.Config.Vocab
	out := make([][][]float32, len(scripts))
	var b flat.Batch
	for {
		b.Reset()
		for k, sc := range scripts {
			n, all := 1, len(sc.Prompt)+len(sc.Decode)
			if done[k] >= all {
				continue
			}
			if done[k] < len(sc.Prompt) {
				n = len(sc.Prompt) - done[k]
				if sc.Chunk > 0 {
					n = min(n, sc.Chunk)
				}
			}
			start, err := s.KV.Append(flat.SeqID(k), n)
			if err != nil {
				return nil, err
			}
			for p := start; p < start+n; p++ {
				var tok int32
				if p < len(sc.Prompt) {
					tok = sc.Prompt[p]
				} else {
					tok = sc.Decode[p-len(sc.Prompt)]
				}
				b.Add(tok, p, flat.SeqID(k), p >= len(sc.Prompt)-1)
			}
			done[k] += n
		}
		if b.Len() == 0 {
			return out, nil
		}
		logits := make([]float32, b.NumOutputs()*V)
		if err := m.Forward(s, &b, logits); err != nil {
			return nil, err
		}
		o := 0
		for i := range b.Tokens {
			if b.Output[i] {
				out[b.Seq[i]] = append(out[b.Seq[i]], logits[o*V:(o+1)*V])
				o++
			}
		}
	}
}
