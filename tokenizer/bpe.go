package tokenizer

import (
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Byte-pair encoding of one word.
//
// A word starts as one symbol per byte (each byte is a one-character string
// of the byte-level alphabet, see bytes.go). The merge list in the file is
// ranked: merge k says "the adjacent pair (A, B) becomes AB", and lower k
// wins. BPE repeatedly applies the best-ranked merge available anywhere in
// the word, leftmost first among equal ranks, until no adjacent pair has a
// merge. The surviving symbols are the tokens.
//
// Doing that naively rescans the word after every merge (O(n²)). Here the
// symbols form a doubly linked list and every candidate pair sits in a
// min-heap keyed by (rank, position), so each merge costs O(log n): pop the
// best pair, skip it if one of its symbols has changed since it was pushed,
// merge, and push the two new pairs the merged symbol forms with its
// neighbours. This is llama.cpp's llm_tokenizer_bpe_session, with symbol ids
// instead of strings.
//
// Symbols are identified by integers. A symbol that is a vocabulary entry
// has its token id; a merge part or result that is not in the vocabulary (no
// real vocabulary has one, but the file format allows it) gets an id past the
// end of the vocabulary. So a merge is a lookup of the pair (left id, right
// id) in one map, with no string building.

// mergeKey packs an ordered pair of symbol ids into a map key.
func mergeKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// merge is what a mergeable pair turns into.
type merge struct {
	rank   int32 // position in the file's merge list; lower is applied first
	result int32 // symbol id of the merged pair
}

// bpeSymbol is one symbol of the word being merged.
type bpeSymbol struct {
	id         int32 // symbol id; -1 once merged into its left neighbour
	prev, next int32 // neighbours in the list, -1 at the ends
}

// bpeCandidate is an adjacent pair that has a merge, waiting in the heap.
type bpeCandidate struct {
	rank        int32
	left, right int32 // positions of the two symbols
	leftID      int32 // ids when pushed: if either changed, the pair is stale
	rightID     int32
	result      int32
}

// less orders candidates by rank, then leftmost first (llama.cpp's order).
func (a bpeCandidate) less(b bpeCandidate) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
}

// bpeScratch holds the buffers one encoding call reuses.
type bpeScratch struct {
	syms []bpeSymbol    // (symbol) the word's symbol list
	heap []bpeCandidate // (candidate) a binary min-heap
	cps  []codePoint    // (code point) the pre-tokenizer's decoded text
	ends []int32        // (word) byte offset where each word ends
	enc  []byte         // a word's byte-level text (ignore_merges lookups)
}

var scratchPool = sync.Pool{New: func() any { return new(bpeScratch) }}

func (s *bpeScratch) push(c bpeCandidate) {
	s.heap = append(s.heap, c)
	h := s.heap
	for i := len(h) - 1; i > 0; { // sift up
		parent := (i - 1) / 2
		if !h[i].less(h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (s *bpeScratch) pop() bpeCandidate {
	h := s.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; { // sift down
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].less(h[m]) {
			m = l
		}
		if r < len(h) && h[r].less(h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	s.heap = h
	return top
}

// tryPair pushes the pair (left, right) if the vocabulary has a merge for it.
func (t *Tokenizer) tryPair(s *bpeScratch, left, right int32) {
	if left < 0 || right < 0 {
		return
	}
	l, r := s.syms[left].id, s.syms[right].id
	if m, ok := t.merges[mergeKey(l, r)]; ok {
		s.push(bpeCandidate{rank: m.rank, left: left, right: right, leftID: l, rightID: r, result: m.result})
	}
}

// bpeWord appends the tokens of one pre-tokenized word to out.
func (t *Tokenizer) bpeWord(s *bpeScratch, word string, out []int32) []int32 {
	s.syms = s.syms[:0]
	s.heap = s.heap[:0]
	for i := 0; i < len(word); i++ {
		next := int32(i + 1)
		if i == len(word)-1 {
			next = -1
		}
		s.syms = append(s.syms, bpeSymbol{id: t.byteSymbol[word[i]], prev: int32(i - 1), next: next})
	}
	for i := 1; i < len(s.syms); i++ {
		t.tryPair(s, int32(i-1), int32(i))
	}
	for len(s.heap) > 0 {
		c := s.pop()
		left, right := &s.syms[c.left], &s.syms[c.right]
		if left.id != c.leftID || right.id != c.rightID {
			continue // one side was merged into something else since the push
		}
		// Merge the right symbol into the left one and unlink it.
		left.id = c.result
		right.id = -1
		left.next = right.next
		if right.next >= 0 {
			s.syms[right.next].prev = c.left
		}
		t.tryPair(s, left.prev, c.left)
		t.tryPair(s, c.left, left.next)
	}
	for i := int32(0); i >= 0; i = s.syms[i].next {
		out = t.appendSymbol(out, s.syms[i].id)
	}
	return out
}

// appendSymbol appends the token of a final symbol. A symbol that is not a
// vocabulary entry (only possible with a merge list that builds strings the
// vocabulary lacks) falls back, as in llama.cpp, to the tokens of its
// single-byte characters where those exist.
func (t *Tokenizer) appendSymbol(out []int32, id int32) []int32 {
	if id < int32(len(t.tokens)) {
		return append(out, id)
	}
	text := t.extraSymbols[id-int32(len(t.tokens))]
	for i := 0; i < len(text); i++ {
		if tok, ok := t.textToID[text[i:i+1]]; ok {
			out = append(out, tok)
		}
	}
	return out
}

// wordCache remembers the tokens of recently seen words. Text repeats words
// constantly, so most words skip BPE entirely. It is split into shards, each
// behind its own mutex, so concurrent encoders rarely wait on each other,
// and bounded: a shard that reaches its limit is emptied and starts over
// (crude, but a cache of 2^16 words refills in a few milliseconds).
type wordCache struct {
	shards [wordCacheShards]struct {
		mu sync.Mutex
		m  map[string][]int32
	}
}

const (
	wordCacheShards   = 16
	wordCachePerShard = 4096 // 65536 words in all
	maxCachedWordLen  = 64   // longer words are rare; not worth the memory
)

func shardOf(word string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(word); i++ {
		h = (h ^ uint32(word[i])) * 16777619
	}
	return int(h % wordCacheShards)
}

func (c *wordCache) get(word string) ([]int32, bool) {
	sh := &c.shards[shardOf(word)]
	sh.mu.Lock()
	ids, ok := sh.m[word]
	sh.mu.Unlock()
	return ids, ok
}

func (c *wordCache) put(word string, ids []int32) {
	sh := &c.shards[shardOf(word)]
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= wordCachePerShard {
		sh.m = make(map[string][]int32, 256)
	}
	// Clone the key: word is a slice of the caller's text, and keeping it
	// would keep the whole text alive.
	sh.m[strings.Clone(word)] = slices.Clone(ids)
	sh.mu.Unlock()
}

// encodeText appends the tokens of a piece of text that holds no special
// tokens: pre-tokenize, then BPE each word (through the cache).
func (t *Tokenizer) encodeText(s *bpeScratch, text string, out []int32) []int32 {
	s.cps, s.ends = t.split(text, s.cps, s.ends[:0])
	start := 0
	for _, e := range s.ends {
		word := text[start:int(e)]
		start = int(e)
		if t.ignoreMerges && len(word) > 1 {
			// llama-bpe: a word that is a vocabulary entry is that entry,
			// whatever the merges would build (llama.cpp looks the word's
			// byte-level text up among all token texts).
			s.enc = s.enc[:0]
			for i := 0; i < len(word); i++ {
				s.enc = utf8.AppendRune(s.enc, byteToRune[word[i]])
			}
			if id, ok := t.textToID[string(s.enc)]; ok {
				out = append(out, id)
				continue
			}
		}
		if len(word) == 1 {
			out = t.appendSymbol(out, t.byteSymbol[word[0]])
			continue
		}
		if len(word) <= maxCachedWordLen {
			if ids, ok := t.cache.get(word); ok {
				out = append(out, ids...)
				continue
			}
		}
		n := len(out)
		out = t.bpeWord(s, word, out)
		if len(word) <= maxCachedWordLen {
			t.cache.put(word, out[n:])
		}
	}
	return out
}
