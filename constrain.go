package gollm

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/gollm/gollm/grammar"
)

// Grammar-constrained sampling.
//
// A request with GenerateOptions.Grammar carries a grammar.Matcher: the
// state of the text generated so far within the grammar. Before each of
// its tokens is sampled, the engine loop asks the context's one Masker
// which tokens of the vocabulary may come next (grammar.Masker.FillMask,
// a walk of the model's token trie with the matcher's state), sets the
// logits of all the others to -Inf, and samples. After sampling, the
// token's bytes advance the matcher. A worked example, with the JSON
// grammar and the text so far `{"a"`:
//
//	allowed    ":" " :" ": " ":{" …  (tokens whose bytes may follow)
//	refused    "," "}" "a" "x" … (-Inf: the sampler never picks them)
//	end        refused: the object is not closed (CanEnd is false)
//
// and after `{"a": 1}` only end of generation is left (Done): the request
// ends there at once, as if the model had sampled end of generation next,
// without the forward step that would take.
//
// The order, and why. The mask comes first, on the model's raw logits,
// before the logit bias, the penalties, top-k/top-p/min-p and the
// temperature: llama.cpp puts the grammar first in its sampler chain too.
// Masking first means the truncations choose among the allowed tokens
// only. Suppose the model's top three tokens are "Hello" (p = 0.6), "The"
// (0.3) and "{" (0.05), and the grammar wants a JSON object. With top-k 2
// applied before the mask, only "Hello" and "The" survive, both refused,
// and nothing is left to draw; with the mask first, "{" and the other
// allowed tokens are the candidates, and top-k 2 picks among them. The
// penalties and bias only move logits, so their order against the mask
// changes nothing except that a +Inf logit bias (which the sampler treats
// as "force this token") could force a refused token: that is checked
// after sampling and is an error, never output outside the grammar.
//
// End of generation: the end-of-generation tokens have no bytes, so the
// trie never allows them; they are allowed exactly where the matcher may
// end (CanEnd: a complete sentence, no UTF-8 character half written). A
// state where neither a token nor the end is allowed (a grammar that
// needs a character no token spells, or a vocabulary without
// end-of-generation tokens at the end of the grammar) ends the request
// with an error wrapping ErrGrammarStuck, never a hang.
//
// Preemption: a preempted request gives up its KV blocks and is evaluated
// again later from its known tokens, prompt and generated ones alike; it
// samples nothing until it has caught up. So the matcher, which has read
// exactly the generated tokens, stays valid as it is: nothing to replay.
//
// Batch invariance: the mask of a row depends only on that request's
// matcher, and the Masker's cache returns exactly the mask a fresh walk
// would. A constrained and an unconstrained request in the same steps
// each get what they would alone (TestGrammarBatchInvariance).
//
// Cost: unconstrained requests pay one nil check per token and allocate
// nothing. A constrained row pays FillMask (microseconds where few tokens
// fit, more inside strings, cached per state) plus one pass over the mask
// words (2374 for 151936 tokens) writing -Inf at each refused id; see
// BenchmarkConstrainedDecode. Two costs land on the loop, once: the
// first mask inside a string sorts the vocabulary by that character
// class (about 8 ms for Qwen3, kept in the trie for every later request).
// And a very ambiguous grammar is slow to mask every step: `root ::=
// a{0,50} "!"` with `a ::= [a-z]? [a-z]? [a-z]?` keeps about 150 parse
// stacks alive and takes about 0.3 s per mask, which delays every
// sequence's steps. The grammar package bounds this work (Limits.MaxStacks,
// the mask-work limit) but does not yet make it cheap: precomputing per
// grammar position, in XGrammar's manner, is what is left to do.

// Lazy grammars (GenerateOptions.Trigger), for tool calls. Qwen3 calls a
// tool by writing
//
//	<tool_call>
//	{"name": "get_weather", "arguments": {"city": "Paris"}}
//	</tool_call>
//
// where <tool_call> and </tool_call> are single special tokens (151657
// and 151658), amid free text. With Trigger {Open: <tool_call>, Close:
// </tool_call>} the text is free until the model samples Open; from there
// the grammar (here: a newline, one call of a declared function with its
// parameters' schema, a newline) constrains every token, Close is allowed
// only where the grammar may end and is the only token left once it is
// Done, and end of generation waits for the span to close. After Close
// the text is free again, and the next Open starts a fresh matcher, so a
// turn may make several calls, each one whole and valid.

// GrammarTrigger makes GenerateOptions.Grammar lazy: it applies only
// between the tokens Open and Close. Both are token ids, usually special
// tokens (which no grammar can spell): Qwen3's <tool_call> and
// </tool_call>.
type GrammarTrigger struct {
	Open, Close int32
}

// ErrGrammarStuck: a constrained generation reached a state where no
// token of the vocabulary, and not the end, is allowed.
var ErrGrammarStuck = errors.New("gollm: no token can continue the grammar")

// constraint is a request's grammar state, owned by the engine loop once
// the request is submitted.
type constraint struct {
	m      *grammar.Matcher // nil for a lazy grammar outside its spans
	trie   *grammar.TokenTrie
	pieces [][]byte // the trie's pieces: each token's bytes, nil for special and end-of-generation tokens

	g    *grammar.Grammar
	trig *GrammarTrigger // nil: the grammar covers the whole output
}

// masking reports whether the next token is constrained: always with a
// plain grammar, inside a span with a lazy one. (c may be nil.)
func (c *constraint) masking() bool { return c != nil && c.m != nil }

// tokenTrie returns the model's token trie, built on first use (about a
// tenth of a second for 151k tokens), on the goroutine of the first
// constrained request's caller, never on the engine loop. Each entry is
// the token's bytes; special tokens (control and user-defined: "<think>",
// "<|im_end|>") and end-of-generation tokens get none, so no mask ever
// allows them: a grammar constrains text, and the end is decided by
// CanEnd.
func (m *Model) tokenTrie() (*grammar.TokenTrie, [][]byte) {
	m.trieOnce.Do(func() {
		pieces := make([][]byte, m.net.Config.Vocab) // rows beyond the tokenizer's (padding) stay nil
		for id := range min(len(pieces), m.tok.Vocab()) {
			if t := int32(id); !m.tok.IsSpecial(t) && !m.tok.IsEOG(t) {
				pieces[id] = m.tok.TokenPiece(t)
			}
		}
		m.trie, m.pieces = grammar.NewTokenTrie(pieces), pieces
	})
	return m.trie, m.pieces
}

// newConstraint makes a request's constraint, or nil without a grammar.
func (m *Model) newConstraint(g *grammar.Grammar, trig *GrammarTrigger) *constraint {
	if g == nil {
		return nil
	}
	trie, pieces := m.tokenTrie()
	c := &constraint{trie: trie, pieces: pieces, g: g}
	if trig == nil {
		c.m = g.NewMatcher()
	} else {
		t := *trig
		c.trig = &t
	}
	return c
}

// constrain sets the logits of the tokens r's grammar refuses here to
// -Inf, in place (the row is the engine's own buffer).
func (e *engine) constrain(r *request, row []float32) error {
	if e.masker == nil {
		e.masker = grammar.NewMasker(r.con.trie)
		e.mask = make([]uint64, r.con.trie.MaskWords())
	}
	mask := e.mask
	if err := e.masker.FillMask(r.con.m, mask); err != nil {
		return fmt.Errorf("gollm: grammar: %w", err)
	}
	switch {
	case r.con.trig != nil:
		// A lazy grammar's span ends with its close token, allowed where
		// the grammar may end (the only token left once it is Done); end
		// of generation waits until the span is closed.
		if r.con.m.CanEnd() {
			id := r.con.trig.Close
			mask[id/64] |= 1 << (id % 64)
		}
	case r.con.m.CanEnd() && !r.ignoreEOG:
		for _, id := range e.eogs {
			if int(id) < len(row) {
				mask[id/64] |= 1 << (id % 64)
			}
		}
	}
	// One pass over the words: a full word (inside a string, most are)
	// is skipped whole; otherwise each clear bit is a refused id.
	negInf := float32(math.Inf(-1))
	allowed := 0
	for w, word := range mask {
		allowed += bits.OnesCount64(word)
		base := w * 64
		for refused := ^word; refused != 0; refused &= refused - 1 {
			id := base + bits.TrailingZeros64(refused)
			if id >= len(row) {
				break // the last word's bits beyond the vocabulary
			}
			row[id] = negInf
		}
	}
	if allowed == 0 {
		return fmt.Errorf("%w: after %d generated tokens, no token of the vocabulary may follow the text, and the grammar may not end there",
			ErrGrammarStuck, r.generated)
	}
	return nil
}

// advance feeds the sampled token to r's matcher. The mask of this step
// (still in e.mask) must allow it: only a +Inf logit bias can make the
// sampler pick a refused token.
func (e *engine) advance(r *request, tok int32) error {
	c := r.con
	if c.m == nil { // a lazy grammar, outside a span: free text
		if tok == c.trig.Open {
			c.m = c.g.NewMatcher()
		}
		return nil
	}
	if e.mask[tok/64]&(1<<(tok%64)) == 0 {
		return fmt.Errorf("gollm: grammar: token %d was forced (a +Inf logit bias?) where the grammar refuses it", tok)
	}
	if c.trig != nil && tok == c.trig.Close {
		c.m = nil // the span is complete: free text until the next Open
		return nil
	}
	piece := c.pieces[tok]
	if piece == nil {
		return nil // end of generation (the only bytes-less tokens a mask allows), where the grammar may end
	}
	if _, err := r.con.m.Accept(piece); err != nil {
		return fmt.Errorf("gollm: grammar: token %d: %w", tok, err) // the mask allowed it: a bug
	}
	return nil
}
