// Package flat defines the flat batch: the one shape in which work moves
// from the planner (package batch) through the engine loop to the model
// (model.Forward).
//
// A flat batch is a list of tokens from any number of sequences, as in
// llama.cpp's llama_batch: parallel arrays indexed by token. There is no
// "prefill batch" or "decode batch": a step that carries 37 prompt tokens
// of sequence 0 and one generated token each of sequences 1 and 2 is
//
//	Tokens: [t0 … t36, g1, g2]       (token) vocabulary ids
//	Pos:    [0 … 36,  12, 40]        (token) position within its sequence
//	Seq:    [0 … 0,    1,  2]        (token) sequence
//	Output: [f … f t,  t,  t]        (token) wants logits?
//
// and only the last token of each sequence asks for logits (the one whose
// logits choose the next token).
//
// The package depends on nothing, so every other package can use its two
// types without importing each other.
package flat

// SeqID names a sequence of a context: 0 … Sequences-1. It is the one
// sequence-id type of the engine (KV block tables, batches, traces).
type SeqID int32

// Batch is one forward step's tokens, as parallel arrays.
type Batch struct {
	Tokens []int32 // (token) vocabulary id
	Pos    []int32 // (token) position within its sequence
	Seq    []SeqID // (token) which sequence it belongs to
	Output []bool  // (token) return logits for it?
}

// Len is the number of tokens.
func (b *Batch) Len() int { return len(b.Tokens) }

// Add appends one token.
func (b *Batch) Add(tok int32, pos int, seq SeqID, output bool) {
	b.Tokens = append(b.Tokens, tok)
	b.Pos = append(b.Pos, int32(pos))
	b.Seq = append(b.Seq, seq)
	b.Output = append(b.Output, output)
}

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.Tokens, b.Pos, b.Seq, b.Output = b.Tokens[:0], b.Pos[:0], b.Seq[:0], b.Output[:0]
}

// NumOutputs counts the tokens that want logits.
func (b *Batch) NumOutputs() int {
	n := 0
	for _, o := range b.Output {
		if o {
			n++
		}
	}
	return n
}
