package grammar

import (
	"slices"
	"unicode/utf8"
)

// Masks inside strings, by class.
//
// Inside a JSON string nearly every character leads on in the same way: a
// state S0 reads any character of a large class C (everything but ", \
// and the controls) and goes to S1, which reads C the same way to S2, and
// so on: S1 = S0 for an unbounded string, a chain S0 … SK for a string of
// at most K more characters. Walking the trie for such a state visits
// nearly all of its nodes, and every state of a bounded string is new.
//
// But which tokens stay inside C, and where the others leave it, depends
// on C alone. So, once per class, one scan of the trie sorts the tokens:
//   - a token whose characters are all in C (its last one possibly
//     unfinished, but able to end in C), with n complete characters: the
//     state accepts it exactly when the chain is at least n long;
//   - every other token lies below an exit: the first node where the path
//     leaves C, after j characters of C.
//
// A mask for a chain S0 … SK is then: the tokens of C with n ≤ K, and a
// walk of each exit's subtree (j ≤ K) from the state Sj, as the plain walk
// would do it. The chain is used only where it is exact: each state's
// stack tops take each range of C whole or not at all, and the end SK
// accepts nothing of C.

// classPre is the vocabulary sorted by one class C.
type classPre struct {
	c class
	// Tokens all in C with complete characters only, by their count n:
	// full[:fullEnd[n]] are those with at most n.
	full    []int32
	fullEnd []int32
	// Tokens all in C whose last character is unfinished.
	partial []classPartial
	exits   []classExit
	// maxRunes is the largest count of C characters before any decision:
	// a chain longer than this is as good as an endless one.
	maxRunes int32
}

type classPartial struct {
	token int32
	runes int32 // complete characters before the unfinished one
	buf   [4]byte
	n     uint8
	need  uint8
}

type classExit struct {
	node  int32
	runes int32 // complete characters of C before it
	buf   [4]byte
	n     uint8 // bytes of an unfinished character before the node's byte
	need  uint8
}

// cplace is where the class scan stands at a node.
type cplace struct {
	runes   int32
	buf     [4]byte
	n, need uint8
}

// minClassSize is the smallest class worth the by-class mask.
const minClassSize = 128

// maxClasses bounds the classes a TokenTrie keeps sorted (each about 1 MiB
// for 151k tokens); past it the oldest is dropped.
const maxClasses = 16

// byClass returns the vocabulary sorted by class c, made on first use and
// shared by every Masker of the trie.
func (t *TokenTrie) byClass(c class) *classPre {
	key := c.key()
	t.mu.Lock()
	pre := t.classes[key]
	t.mu.Unlock()
	if pre != nil {
		return pre
	}
	pre = t.precompute(c) // outside the lock: two goroutines may both make it
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.classes[key]; old != nil {
		return old
	}
	if t.classes == nil {
		t.classes = map[string]*classPre{}
	}
	if len(t.classOrder) >= maxClasses {
		delete(t.classes, t.classOrder[0])
		t.classOrder = t.classOrder[1:]
	}
	t.classes[key] = pre
	t.classOrder = append(t.classOrder, key)
	return pre
}

// precompute scans the trie once for class c.
func (t *TokenTrie) precompute(c class) *classPre {
	pre := &classPre{c: c}
	type counted struct{ token, runes int32 }
	var full []counted
	nodes := t.nodes
	at := []cplace{{}}
	for i := int32(1); i < int32(len(nodes)-1); {
		nd := &nodes[i]
		d := int(nd.depth)
		from := at[d-1]
		b := nd.edge
		var to cplace
		exit, skip := false, false
		if from.n == 0 {
			switch l := utf8Len(b); l {
			case 0:
				skip = true // never valid UTF-8
			case 1:
				if c.contains(rune(b)) {
					to = cplace{runes: from.runes + 1}
				} else {
					exit = true
				}
			default:
				lo, hi, _ := utf8Range([]byte{b}, l)
				if c.overlaps(lo, hi) {
					to = cplace{runes: from.runes, buf: [4]byte{b}, n: 1, need: uint8(l)}
				} else {
					exit = true
				}
			}
		} else {
			buf := from.buf
			buf[from.n] = b
			lo, hi, ok := utf8Range(buf[:from.n+1], int(from.need))
			switch {
			case !ok:
				skip = true
			case from.n+1 < from.need:
				if c.overlaps(lo, hi) {
					to = cplace{runes: from.runes, buf: buf, n: from.n + 1, need: from.need}
				} else {
					exit = true
				}
			default:
				r, _ := utf8.DecodeRune(buf[:from.need])
				if c.contains(r) {
					to = cplace{runes: from.runes + 1}
				} else {
					exit = true
				}
			}
		}
		if skip || exit {
			if exit {
				pre.exits = append(pre.exits, classExit{node: i, runes: from.runes, buf: from.buf, n: from.n, need: from.need})
				pre.maxRunes = max(pre.maxRunes, from.runes)
			}
			i = nd.skip
			continue
		}
		if d == len(at) {
			at = append(at, to)
		} else {
			at[d] = to
		}
		pre.maxRunes = max(pre.maxRunes, to.runes)
		for _, id := range t.tokens[nd.tok:nodes[i+1].tok] {
			if to.n == 0 {
				full = append(full, counted{id, to.runes})
			} else {
				pre.partial = append(pre.partial, classPartial{token: id, runes: to.runes, buf: to.buf, n: to.n, need: to.need})
			}
		}
		i++
	}
	// A counting sort by the number of characters.
	pre.fullEnd = make([]int32, pre.maxRunes+1)
	for _, f := range full {
		pre.fullEnd[f.runes]++
	}
	for n := 1; n < len(pre.fullEnd); n++ {
		pre.fullEnd[n] += pre.fullEnd[n-1]
	}
	pre.full = make([]int32, len(full))
	next := make([]int32, len(pre.fullEnd)) // where bucket n's next token goes
	for n := 1; n < len(next); n++ {
		next[n] = pre.fullEnd[n-1]
	}
	for _, f := range full {
		pre.full[next[f.runes]] = f.token
		next[f.runes]++
	}
	return pre
}

// dominantClass returns the largest class of characters that state si
// treats alike (the same stacks accept them), if it is large enough and
// si has at most 64 stacks.
func (g *Grammar) dominantClass(st *state) (class, bool) {
	if len(st.stacks) == 0 || len(st.stacks) > 64 {
		return nil, false
	}
	points := []rune{0, maxRune + 1}
	for _, s := range st.stacks {
		for _, r := range g.classes[g.elems[s.pos].arg] {
			points = append(points, r.lo, r.hi+1)
		}
		if len(points) > 4096 {
			return nil, false
		}
	}
	slices.Sort(points)
	points = slices.Compact(points)
	size := map[uint64]int{}
	subsets := make([]uint64, len(points)-1)
	for i := range subsets {
		var sub uint64
		for j, s := range st.stacks {
			if g.classes[g.elems[s.pos].arg].contains(points[i]) {
				sub |= 1 << j
			}
		}
		subsets[i] = sub
		if sub != 0 {
			size[sub] += int(points[i+1] - points[i])
		}
	}
	var best uint64
	for sub, n := range size {
		if n > size[best] || n == size[best] && sub < best {
			best = sub
		}
	}
	if size[best] < minClassSize {
		return nil, false
	}
	var c class
	for i, sub := range subsets {
		if sub == best {
			c = append(c, rng{points[i], points[i+1] - 1})
		}
	}
	return c.normalize(), true
}

// uniformOn reports the stacks of st that accept c: ok is false unless
// every stack top takes each range of c whole or not at all, and all
// ranges alike.
func (g *Grammar) uniformOn(st *state, c class) (subset uint64, ok bool) {
	if len(st.stacks) > 64 {
		return 0, false
	}
	for j, s := range st.stacks {
		tc := g.classes[g.elems[s.pos].arg]
		in := false
		for ri, r := range c {
			all := tc.containsRange(r.lo, r.hi)
			if !all && tc.overlaps(r.lo, r.hi) {
				return 0, false
			}
			if ri > 0 && all != in {
				return 0, false
			}
			in = all
		}
		if in {
			subset |= 1 << j
		}
	}
	return subset, true
}

// containsRange reports whether c holds all of [lo, hi].
func (c class) containsRange(lo, hi rune) bool {
	i, _ := slices.BinarySearchFunc(c, lo, func(r rng, v rune) int {
		if r.hi < v {
			return -1
		}
		return 1
	})
	return i < len(c) && c[i].lo <= lo && hi <= c[i].hi
}

// classMask fills mask for state si by class, if si suits it; it reports
// whether it did.
func (k *Masker) classMask(g *Grammar, si int32, mask []uint64) bool {
	c, ok := g.dominantClass(&k.states[si])
	if !ok {
		return false
	}
	pre := k.trie.byClass(c)
	// The chain S0, S1, …: up to an end that accepts nothing of c, a cycle,
	// or pre.maxRunes+1 states (as good as endless).
	chain := k.chain[:0]
	chain = append(chain, si)
	endless, cycleAt := false, -1
	for {
		cur := chain[len(chain)-1]
		sub, ok := g.uniformOn(&k.states[cur], c)
		if !ok {
			k.chain = chain
			return false
		}
		if sub == 0 {
			break // the end: nothing of c goes on
		}
		if int32(len(chain)) > pre.maxRunes {
			endless = true
			break
		}
		next := k.runeStep(g, cur, c[0].lo)
		if next < 0 {
			k.chain = chain
			return false
		}
		if i := slices.Index(chain, next); i >= 0 {
			endless, cycleAt = true, i
			break
		}
		chain = append(chain, next)
	}
	k.chain = chain
	k.byClass++
	stateAt := func(j int32) int32 {
		if int(j) < len(chain) {
			return chain[j]
		}
		if cycleAt < 0 { // capped: beyond maxRunes, never asked
			return chain[len(chain)-1]
		}
		period := int32(len(chain) - cycleAt)
		return chain[int32(cycleAt)+(j-int32(cycleAt))%period]
	}
	K := int32(len(chain) - 1) // the chain's length, when it ends
	// Tokens all in c.
	end := int32(len(pre.full))
	if !endless {
		end = pre.fullEnd[min(K, int32(len(pre.fullEnd)-1))]
	}
	for _, id := range pre.full[:end] {
		mask[id>>6] |= 1 << (id & 63)
	}
	for _, p := range pre.partial {
		switch {
		case endless || p.runes < K:
		case p.runes == K:
			lo, hi, _ := utf8Range(p.buf[:p.n], int(p.need))
			if !g.allows(&k.states[chain[K]], lo, hi) {
				continue
			}
		default:
			continue
		}
		mask[p.token>>6] |= 1 << (p.token & 63)
	}
	// The others, below the exits.
	nodes := k.trie.nodes
	for _, e := range pre.exits {
		if !endless && e.runes > K {
			continue
		}
		start := place{si: stateAt(e.runes), buf: e.buf, n: e.n, need: e.need}
		k.walkFrom(g, start, e.node, nodes[e.node].skip, mask)
	}
	return true
}
