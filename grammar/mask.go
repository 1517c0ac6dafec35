package grammar

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"
)

// Token masks.
//
// A sampler constrained by a grammar must know, before it samples, which
// tokens of the vocabulary can follow: those whose bytes the matcher
// accepts one after another. Trying each of 151k tokens separately would
// walk the same first bytes over and over: thousands of tokens start with
// " the" or "\"". So the tokens are put in a trie, once per vocabulary,
// and the trie is walked depth first with the matcher's state: each edge
// is one byte; a byte the state refuses cuts off the whole subtree below
// it, and every shared prefix is advanced once.
//
// The trie is stored flat, in preorder, the layout XGrammar uses: node i's
// subtree is nodes i … skip[i]-1, so its first child is i+1 and the next
// sibling of child j is skip[j]. Walking needs no pointers and skipping a
// refused subtree is one jump.
//
// The states made during a walk live only as long as it, so their nodes
// come from an arena that is reused from one mask to the next.
//
// Cost (Qwen3's 151k tokens, 333k trie nodes): where few tokens fit (a
// key, a number, an enum) the walk stops at the first bytes and takes
// microseconds. Inside a string nearly every token fits, and a plain walk
// visits the whole trie (milliseconds); there the masks go by class
// instead (mask_class.go): the vocabulary is sorted once per class of
// characters, and a mask sets the tokens that stay in the class and walks
// only those that leave it. The cache makes a state met again cost a
// copy. What is left to do, in XGrammar's manner, is to precompute per
// grammar position the tokens accepted whatever the stack below.

// TokenTrie is a vocabulary's token byte strings arranged for FillMask. It
// is safe for concurrent use: the trie is immutable, and the vocabulary's
// sorts by class (mask_class.go), made on demand, are shared under a lock.
type TokenTrie struct {
	vocab int

	mu         sync.Mutex
	classes    map[string]*classPre
	classOrder []string // oldest first

	// nodes in preorder, the root first, then a sentinel whose tok ends
	// the last node's tokens.
	nodes  []trieNode
	tokens []int32 // node i's tokens are tokens[nodes[i].tok:nodes[i+1].tok]
}

// trieNode is one node of the trie, packed so that the walk reads one
// array: 12 bytes.
type trieNode struct {
	skip  int32  // the end of the node's subtree (the next node not in it)
	tok   int32  // the start of its tokens in TokenTrie.tokens
	depth uint16 // the root's is 0
	edge  byte   // the byte on the edge into the node (the root has none)
}

// MaxPieceBytes bounds the tokens a TokenTrie holds: a longer piece is
// never in a mask.
const MaxPieceBytes = 1 << 12

// NewTokenTrie builds the trie of pieces, where pieces[id] is token id's
// bytes (byte-level BPE pieces decoded to bytes). A token with no bytes
// (nil or empty: special tokens, end of generation) is never in a mask;
// the caller decides about those, with CanEnd.
func NewTokenTrie(pieces [][]byte) *TokenTrie {
	ids := make([]int32, 0, len(pieces))
	for id, p := range pieces {
		if len(p) > 0 && len(p) <= MaxPieceBytes {
			ids = append(ids, int32(id))
		}
	}
	slices.SortFunc(ids, func(a, b int32) int {
		if c := bytes.Compare(pieces[a], pieces[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	t := &TokenTrie{vocab: len(pieces), nodes: []trieNode{{}}}
	var owner []int32  // for each entry of t.tokens, its node
	path := []int32{0} // nodes from the root to the last piece's end
	var prev []byte
	for _, id := range ids {
		p := pieces[id]
		common := 0
		for common < len(prev) && common < len(p) && prev[common] == p[common] {
			common++
		}
		for len(path) > common+1 { // close the subtrees we leave
			t.nodes[path[len(path)-1]].skip = int32(len(t.nodes))
			path = path[:len(path)-1]
		}
		for _, b := range p[common:] {
			path = append(path, int32(len(t.nodes)))
			t.nodes = append(t.nodes, trieNode{edge: b, depth: uint16(len(path) - 1)})
		}
		t.tokens = append(t.tokens, id)
		owner = append(owner, path[len(path)-1])
		prev = p
	}
	for _, n := range path {
		t.nodes[n].skip = int32(len(t.nodes))
	}
	// Tokens were added in preorder of their nodes, so owner is sorted:
	// count each node's tokens, then turn the counts into starts.
	t.nodes = append(t.nodes, trieNode{}) // the sentinel
	for _, n := range owner {
		t.nodes[n+1].tok++
	}
	for i := 1; i < len(t.nodes); i++ {
		t.nodes[i].tok += t.nodes[i-1].tok
	}
	return t
}

// Vocab is the number of token ids the trie covers.
func (t *TokenTrie) Vocab() int { return t.vocab }

// Nodes is the number of trie nodes, the root included.
func (t *TokenTrie) Nodes() int { return len(t.nodes) - 1 }

// MaskWords is the length of a mask for t: one bit per token id.
func (t *TokenTrie) MaskWords() int { return (t.vocab + 63) / 64 }

// Masker computes token masks for one matcher at a time, of any grammar.
// It is not safe for concurrent use: have one per goroutine (an engine
// loop can share one among its sequences, which shares the cache too).
//
// Two caches make it fast. Within one mask, the states met are interned
// and their transitions memoized, byte by byte: inside a JSON string
// nearly every character leads back to the same state, so the walk over
// the trie's 333k nodes becomes table lookups. Across masks, the masks of
// the last few states are kept: a sequence that stays inside a string, or
// comes back to the same place of a schema, gets its mask copied.
type Masker struct {
	trie  *TokenTrie
	arena arena
	err   error

	// The states of the current walk: states[i] and its transitions
	// trans[i][b] (unknown, refused, or another state's index).
	states []state
	trans  [][256]int32
	index  map[uint64][]int32 // stateKey → candidates in states
	// the state after a character, by the stacks that accept it; the
	// last subset seen in each state first (0: none)
	subsets    map[subsetKey]int32
	lastSubset []uint64
	lastNext   []int32

	places   []place // the walk's places by depth
	chain    []int32
	byClass  int // masks made by class, for tests
	advances int // runeStep's work in this walk: stacks advanced
	// maxWalkAdvances, but for tests
	maxAdvances int

	cache      []cachedMask // most recently used first
	lastStates int
	maxCache   int
}

type cachedMask struct {
	g    *Grammar
	st   state // its stacks live on the heap (a Matcher's), never in the arena
	key  uint64
	mask []uint64
}

const (
	transUnknown = -1
	transRefused = -2
	transPartial = -3 // a lead byte some character may follow
)

type subsetKey struct {
	state  int32
	stacks uint64
}

// NewMasker returns a Masker for the vocabulary t that keeps the masks of
// the 64 most recent states (about 1.2 MiB for 151k tokens): enough for
// the places of a bounded string (maxLength 50 is 50 states) to be
// computed once and then copied.
func NewMasker(t *TokenTrie) *Masker {
	return &Masker{trie: t, index: map[uint64][]int32{}, subsets: map[subsetKey]int32{}, maxCache: 64, maxAdvances: maxWalkAdvances}
}

// SetCacheSize sets how many states' masks are kept between calls (0: none).
func (k *Masker) SetCacheSize(n int) {
	k.maxCache = max(n, 0)
	if len(k.cache) > k.maxCache {
		k.cache = k.cache[:k.maxCache]
	}
}

// stateKey hashes a state; stacks in any order give the same key.
func stateKey(st *state) uint64 {
	var h uint64
	for _, s := range st.stacks {
		x := s.hash
		x ^= x >> 31
		x *= 0xBF58476D1CE4E5B9
		h += x ^ x>>29
	}
	if st.canEnd {
		h ^= 0x5851F42D4C957F2D
	}
	h ^= uint64(st.np)<<56 | uint64(st.partial[0])<<48 | uint64(st.partial[1])<<40 | uint64(st.partial[2])<<32
	return h
}

// sameState reports whether a and b are the same set of stacks at the same
// point of a UTF-8 sequence.
func sameState(a, b *state) bool {
	if len(a.stacks) != len(b.stacks) || a.canEnd != b.canEnd || a.np != b.np || a.need != b.need || a.partial != b.partial {
		return false
	}
outer:
	for _, x := range a.stacks {
		for _, y := range b.stacks {
			if x.hash == y.hash && sameStack(x, y) {
				continue outer
			}
		}
		return false
	}
	return true
}

// maxWalkAdvances bounds the work of one mask: each advance of a state by
// a character costs its number of stacks (memoized transitions are free).
// A grammar with more than 64 stacks at once is not memoized by subset:
// `a{0,50} "!"` with `a ::= [a-z]? [a-z]? [a-z]?` holds ~150 stacks, and
// one mask over the Qwen3 vocabulary was 86,000 units and 130-280 ms (1.5
// to 3 µs a unit: interning and advancing 150-stack states) on the engine
// loop, delaying every sequence's step. 2^14 units bound a mask to about
// 25-50 ms; every grammar the tests use (49 GBNF grammars, 40 schemas, the
// 27 schemas × 5 seeds generated end to end) stays under it, and a grammar
// past it fails its own request with a *LimitError.
const maxWalkAdvances = 1 << 14

// maxWalkStates bounds the distinct states one mask may meet (each costs a
// 1 KiB transition row): a grammar that makes more is too costly to mask,
// and FillMask says so with a *LimitError.
const maxWalkStates = 1 << 14

// intern returns the index of st among the walk's states, or transRefused
// past maxWalkStates.
func (k *Masker) intern(st state) int32 {
	key := stateKey(&st)
	if len(st.stacks) <= 256 { // sameState is quadratic
		for _, i := range k.index[key] {
			if sameState(&k.states[i], &st) {
				return i
			}
		}
	}
	if len(k.states) >= maxWalkStates {
		if k.err == nil {
			k.err = &LimitError{What: "mask states", Limit: maxWalkStates}
		}
		return transRefused
	}
	i := int32(len(k.states))
	k.states = append(k.states, st)
	var row [256]int32
	for b := range row {
		row[b] = transUnknown
	}
	k.trans = append(k.trans, row)
	k.lastSubset = append(k.lastSubset, 0)
	k.lastNext = append(k.lastNext, 0)
	k.index[key] = append(k.index[key], i)
	return i
}

// FillMask sets bit id of mask (bit id%64 of word id/64) exactly when the
// matcher accepts all of token id's bytes, and clears the others. mask
// must have t.MaskWords() words. End-of-generation tokens are the
// caller's: allow them when m.CanEnd(). An error is a *LimitError met on
// the way (the grammar too ambiguous for some token); the mask then holds
// the tokens found before it.
func (k *Masker) FillMask(m *Matcher, mask []uint64) error {
	t := k.trie
	if len(mask) != t.MaskWords() {
		return fmt.Errorf("grammar: mask has %d words, the vocabulary of %d tokens needs %d", len(mask), t.vocab, t.MaskWords())
	}
	key := stateKey(&m.st)
	for i, c := range k.cache {
		if c.g == m.g && c.key == key && sameState(&c.st, &m.st) {
			copy(mask, c.mask)
			copy(k.cache[1:i+1], k.cache[:i]) // move to the front
			k.cache[0] = c
			return nil
		}
	}
	clear(mask)
	k.err, k.advances = nil, 0
	base := m.st
	base.np, base.need, base.partial = 0, 0, [4]byte{}
	si := k.intern(base)
	if m.st.np > 0 || !k.classMask(m.g, si, mask) {
		k.walk(m.g, place{si: si, buf: m.st.partial, n: m.st.np, need: m.st.need}, mask)
	}
	k.lastStates = len(k.states)
	k.states = k.states[:0]
	k.trans = k.trans[:0]
	k.lastSubset, k.lastNext = k.lastSubset[:0], k.lastNext[:0]
	clear(k.index)
	clear(k.subsets)
	k.arena.reset()
	if k.err != nil {
		return k.err
	}
	if k.maxCache == 0 {
		return nil
	}
	var c cachedMask
	if len(k.cache) < k.maxCache {
		c.mask = make([]uint64, len(mask))
		k.cache = append(k.cache, c)
	} else {
		c = k.cache[len(k.cache)-1]
	}
	copy(k.cache[1:], k.cache[:len(k.cache)-1])
	c.g, c.st, c.key = m.g, m.st, key
	copy(c.mask, mask)
	k.cache[0] = c
	return nil
}

// place is where the walk stands at one trie node: the interned state si,
// plus the first n bytes (buf) of a UTF-8 sequence of need bytes when the
// node's bytes end inside a character. Places inside a character are not
// interned (a token may stop in the middle of a character, and there are
// many such places); the character's completion goes by runeStep.
type place struct {
	si      int32
	buf     [4]byte
	n, need uint8
}

// walk marks the tokens of the trie that place start accepts. The trie is
// in preorder, so the walk is one scan: node i's parent is the last node
// seen at depth[i]-1, whose place is at[depth[i]-1]; a refused node jumps
// to the end of its subtree.
func (k *Masker) walk(g *Grammar, start place, mask []uint64) {
	k.walkFrom(g, start, 1, int32(len(k.trie.nodes)-1), mask)
}

// walkFrom is walk over the nodes first … end-1, a subtree or a run of
// siblings' subtrees, whose parent start is the place of.
func (k *Masker) walkFrom(g *Grammar, start place, first, end int32, mask []uint64) {
	t := k.trie
	nodes := t.nodes
	if first >= end {
		return
	}
	d0 := int(nodes[first].depth)
	at := k.places[:0]
	for len(at) < d0 {
		at = append(at, place{})
	}
	at[d0-1] = start
	for i := first; i < end; {
		nd := &nodes[i]
		d := int(nd.depth)
		from := &at[d-1]
		b := nd.edge
		var to place
		ok := false
		if from.n == 0 {
			next := k.trans[from.si][b]
			if next == transUnknown {
				next = k.step(g, from.si, b)
				k.trans[from.si][b] = next
			}
			switch {
			case next >= 0:
				to, ok = place{si: next}, true
			case next == transPartial:
				to, ok = place{si: from.si, buf: [4]byte{b}, n: 1, need: uint8(utf8Len(b))}, true
			}
		} else {
			buf := from.buf
			buf[from.n] = b
			lo, hi, valid := utf8Range(buf[:from.n+1], int(from.need))
			if valid && g.allows(&k.states[from.si], lo, hi) {
				if from.n+1 < from.need {
					to, ok = place{si: from.si, buf: buf, n: from.n + 1, need: from.need}, true
				} else {
					r, _ := utf8.DecodeRune(buf[:from.need])
					if next := k.runeStep(g, from.si, r); next >= 0 {
						to, ok = place{si: next}, true
					}
				}
			}
		}
		if !ok {
			i = nd.skip
			continue
		}
		if d == len(at) {
			at = append(at, to)
		} else {
			at[d] = to
		}
		for _, id := range t.tokens[nd.tok:nodes[i+1].tok] {
			mask[id>>6] |= 1 << (id & 63)
		}
		i++
	}
	k.places = at[:0]
}

// step is the transition of state si on byte b, between characters.
func (k *Masker) step(g *Grammar, si int32, b byte) int32 {
	n := utf8Len(b)
	switch n {
	case 0:
		return transRefused
	case 1:
		return k.runeStep(g, si, rune(b))
	}
	lo, hi, _ := utf8Range([]byte{b}, n)
	if !g.allows(&k.states[si], lo, hi) {
		return transRefused
	}
	return transPartial
}

// runeStep is the transition of state si on the character r. The state
// that follows depends only on which stacks' tops accept r, so it is
// memoized by that subset: inside a string, every ordinary character
// shares one entry.
func (k *Masker) runeStep(g *Grammar, si int32, r rune) int32 {
	st := &k.states[si]
	var subset uint64
	if len(st.stacks) <= 64 {
		for i, s := range st.stacks {
			if g.classes[g.elems[s.pos].arg].contains(r) {
				subset |= 1 << i
			}
		}
		if subset == 0 {
			return transRefused
		}
		if k.lastSubset[si] == subset {
			return k.lastNext[si]
		}
		if next, ok := k.subsets[subsetKey{si, subset}]; ok {
			k.lastSubset[si], k.lastNext[si] = subset, next
			return next
		}
	}
	k.advances += max(len(st.stacks), 1)
	if k.advances > k.maxAdvances {
		if k.err == nil {
			k.err = &LimitError{What: "mask work", Limit: k.maxAdvances}
		}
		return transRefused
	}
	next := int32(transRefused)
	nst := *st
	if err := g.acceptRune(&nst, r, &k.arena); err == nil {
		next = k.intern(nst)
	} else if !errors.Is(err, ErrRejected) && k.err == nil {
		k.err = err
	}
	if subset != 0 {
		k.subsets[subsetKey{si, subset}] = next
		k.lastSubset[si], k.lastNext[si] = subset, next
	}
	return next
}
