package grammar

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// node is one frame of a parse stack: a position in Grammar.elems and the
// frame below it. Nodes are immutable once made, so stacks share their
// lower parts and a state is copied by copying its slice of tops.
//
// The top frame of every stack a state holds is at a kClass element: the
// next character must be in that class. A lower frame is at the element
// that follows a reference: where to go on once the rule it called ends.
type node struct {
	pos    int32
	depth  int32  // frames in the stack, this one included
	hash   uint64 // of (pos, parent.hash): equal stacks have equal hashes
	parent *node
}

func sameStack(a, b *node) bool {
	for a != b {
		if a == nil || b == nil || a.pos != b.pos || a.hash != b.hash {
			return false
		}
		a, b = a.parent, b.parent
	}
	return true
}

// ErrRejected says the grammar does not allow the byte here.
var ErrRejected = errors.New("grammar: byte not allowed here")

// LimitError says a matcher would exceed one of the grammar's Limits.
type LimitError struct {
	What  string // "stacks", "depth", "work", "mask states" or "mask work"
	Limit int
}

func (e *LimitError) Error() string {
	switch e.What {
	case "stacks":
		return fmt.Sprintf("grammar: more than %d parse stacks at once (the grammar is too ambiguous here)", e.Limit)
	case "depth":
		return fmt.Sprintf("grammar: parse stack deeper than %d rules", e.Limit)
	case "mask states":
		return fmt.Sprintf("grammar: more than %d distinct states while masking the vocabulary", e.Limit)
	case "mask work":
		return fmt.Sprintf("grammar: masking the vocabulary takes more than %d units of work (parse stacks advanced by a character): the grammar is too ambiguous", e.Limit)
	}
	return fmt.Sprintf("grammar: more than %d expansion steps for one character", e.Limit)
}

// expander builds the stacks that follow a set of positions: it replaces
// each reference by its rule's alternatives and each finished rule by its
// caller's continuation, until every stack's top reads a character or the
// stack is empty (the input may end). Stacks are deduplicated.
type expander struct {
	g      *Grammar
	arena  *arena // where nodes and the result come from; nil: the heap
	out    []*node
	seen   map[uint64][]int // hash → indexes into out, when out is large
	canEnd bool
	work   int
}

func (x *expander) push(pos int32, parent *node) (*node, error) {
	d := int32(1)
	h := uint64(pos)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	if parent != nil {
		d = parent.depth + 1
		h ^= parent.hash + 0x94D049BB133111EB + h<<6 + h>>2
	}
	if int(d) > x.g.lim.MaxDepth {
		return nil, &LimitError{What: "depth", Limit: x.g.lim.MaxDepth}
	}
	if x.arena != nil {
		return x.arena.node(node{pos: pos, depth: d, hash: h, parent: parent}), nil
	}
	return &node{pos: pos, depth: d, hash: h, parent: parent}, nil
}

// finish returns the stacks built, copied into the arena if there is one.
func (x *expander) finish() []*node {
	if x.arena == nil {
		return x.out
	}
	return x.arena.stacks(x.out)
}

// arena hands out nodes and stack slices for a computation whose states
// are all dropped at its end (a token mask): it spares the garbage
// collector the short-lived nodes. reset makes everything handed out
// invalid and keeps the memory for the next computation.
type arena struct {
	nodes   [][]node
	ni, n   int // current node chunk, nodes used in it
	ptrs    [][]*node
	pi, np  int
	scratch []*node // the expander's working slice
}

const arenaChunk = 4096

func (a *arena) node(n node) *node {
	if a.n == arenaChunk || len(a.nodes) == 0 {
		if len(a.nodes) > 0 {
			a.ni++
		}
		if a.ni == len(a.nodes) {
			a.nodes = append(a.nodes, make([]node, arenaChunk))
		}
		a.n = 0
	}
	p := &a.nodes[a.ni][a.n]
	*p = n
	a.n++
	return p
}

func (a *arena) stacks(s []*node) []*node {
	if len(s) > arenaChunk {
		return append([]*node(nil), s...)
	}
	if a.np+len(s) > arenaChunk || len(a.ptrs) == 0 {
		if len(a.ptrs) > 0 {
			a.pi++
		}
		if a.pi == len(a.ptrs) {
			a.ptrs = append(a.ptrs, make([]*node, arenaChunk))
		}
		a.np = 0
	}
	out := a.ptrs[a.pi][a.np : a.np+len(s) : a.np+len(s)]
	copy(out, s)
	a.np += len(s)
	return out
}

// reset drops everything handed out. The used memory is cleared so that
// no dropped node keeps another alive.
func (a *arena) reset() {
	for i := 0; i <= a.ni && i < len(a.nodes); i++ {
		clear(a.nodes[i])
	}
	for i := 0; i <= a.pi && i < len(a.ptrs); i++ {
		clear(a.ptrs[i])
	}
	a.ni, a.n, a.pi, a.np = 0, 0, 0, 0
}

// expand adds the stacks that continue from position pos with parent below.
func (x *expander) expand(pos int32, parent *node) error {
	g := x.g
	for {
		x.work++
		if x.work > 64*g.lim.MaxStacks {
			return &LimitError{What: "work", Limit: 64 * g.lim.MaxStacks}
		}
		e := g.elems[pos]
		switch e.kind {
		case kEnd:
			if parent == nil {
				x.canEnd = true
				return nil
			}
			pos, parent = parent.pos, parent.parent
		case kClass:
			n, err := x.push(pos, parent)
			if err != nil {
				return err
			}
			return x.add(n)
		case kRef:
			ret := parent
			if g.elems[pos+1].kind != kEnd { // not a tail call: remember where to go on
				var err error
				if ret, err = x.push(pos+1, parent); err != nil {
					return err
				}
			}
			for _, a := range g.rules[e.arg] {
				if err := x.expand(a, ret); err != nil {
					return err
				}
			}
			return nil
		}
	}
}

func (x *expander) add(n *node) error {
	const linear = 16
	if len(x.out) < linear {
		for _, o := range x.out {
			if sameStack(o, n) {
				return nil
			}
		}
	} else {
		if x.seen == nil {
			x.seen = make(map[uint64][]int, 2*len(x.out))
			for i, o := range x.out {
				x.seen[o.hash] = append(x.seen[o.hash], i)
			}
		}
		for _, i := range x.seen[n.hash] {
			if sameStack(x.out[i], n) {
				return nil
			}
		}
		x.seen[n.hash] = append(x.seen[n.hash], len(x.out))
	}
	if len(x.out) >= x.g.lim.MaxStacks {
		return &LimitError{What: "stacks", Limit: x.g.lim.MaxStacks}
	}
	x.out = append(x.out, n)
	return nil
}

// state is where a match stands. It is a value: copying it copies the
// match, since the stacks it points to are never modified (advancing makes
// a new slice).
type state struct {
	stacks []*node
	canEnd bool // the code points read so far form a sentence

	// A UTF-8 sequence not yet complete: its first np bytes, and its
	// length.
	partial  [4]byte
	np, need uint8
}

// Matcher is the state of matching one input against a Grammar, advanced a
// byte at a time. The zero value is not usable; make one with NewMatcher.
// A Matcher is not safe for concurrent use, but Clone is cheap: the stacks
// are immutable and shared.
type Matcher struct {
	g  *Grammar
	st state
}

// NewMatcher returns a matcher at the start of the grammar's language.
func (g *Grammar) NewMatcher() *Matcher {
	return &Matcher{g: g, st: state{stacks: g.start, canEnd: g.startEnd}}
}

// Clone returns an independent copy of m, in O(1).
func (m *Matcher) Clone() *Matcher {
	c := *m
	return &c
}

// CanEnd reports whether the input so far is a complete sentence of the
// grammar (and no UTF-8 sequence is left unfinished).
func (m *Matcher) CanEnd() bool { return m.st.canEnd && m.st.np == 0 }

// Done reports whether no byte can follow: the only way on is to end.
func (m *Matcher) Done() bool { return len(m.st.stacks) == 0 }

// Stacks returns the number of parse stacks alive, a measure of the
// grammar's ambiguity here.
func (m *Matcher) Stacks() int { return len(m.st.stacks) }

// utf8Range is the range of code points that a valid UTF-8 sequence
// starting with prefix (1 to 3 bytes, of a sequence of need bytes) can
// encode, or ok=false if no valid sequence starts so.
func utf8Range(prefix []byte, need int) (lo, hi rune, ok bool) {
	b0 := prefix[0]
	if len(prefix) >= 2 {
		lo2, hi2 := byte(0x80), byte(0xBF)
		switch b0 {
		case 0xE0:
			lo2 = 0xA0
		case 0xED:
			hi2 = 0x9F
		case 0xF0:
			lo2 = 0x90
		case 0xF4:
			hi2 = 0x8F
		}
		if prefix[1] < lo2 || prefix[1] > hi2 {
			return 0, 0, false
		}
	}
	for _, b := range prefix[1:] {
		if b&0xC0 != 0x80 {
			return 0, 0, false
		}
	}
	var v rune
	switch need {
	case 2:
		v = rune(b0 & 0x1F)
	case 3:
		v = rune(b0 & 0x0F)
	case 4:
		v = rune(b0 & 0x07)
	}
	for _, b := range prefix[1:] {
		v = v<<6 | rune(b&0x3F)
	}
	rest := uint(need - len(prefix))
	lo = v << (6 * rest)
	hi = lo | (1<<(6*rest) - 1)
	minimum := [5]rune{0, 0, 0x80, 0x800, 0x10000}[need]
	lo = max(lo, minimum)
	hi = min(hi, maxRune)
	if b0 == 0xED {
		hi = min(hi, 0xD7FF)
	}
	return lo, hi, lo <= hi
}

// utf8Len is the length of the sequence a lead byte starts, 0 if invalid.
func utf8Len(b byte) int {
	switch {
	case b < 0x80:
		return 1
	case b < 0xC2:
		return 0
	case b < 0xE0:
		return 2
	case b < 0xF0:
		return 3
	case b < 0xF5:
		return 4
	}
	return 0
}

// AcceptByte advances m by one byte. It returns ErrRejected if the grammar
// cannot go on with it (a byte that starts or continues a UTF-8 sequence
// is accepted only if some character it may complete to is allowed), or a
// *LimitError. On error m is unchanged.
func (m *Matcher) AcceptByte(b byte) error { return m.g.advance(&m.st, b, nil) }

// advance moves st on by one byte; on error st is unchanged. Nodes come
// from a when it is not nil.
func (g *Grammar) advance(st *state, b byte, a *arena) error {
	if st.np == 0 {
		n := utf8Len(b)
		switch n {
		case 0:
			return ErrRejected
		case 1:
			return g.acceptRune(st, rune(b), a)
		}
		lo, hi, _ := utf8Range([]byte{b}, n)
		if !g.allows(st, lo, hi) {
			return ErrRejected
		}
		st.partial[0], st.np, st.need = b, 1, uint8(n)
		return nil
	}
	buf := st.partial
	buf[st.np] = b
	k := int(st.np) + 1
	lo, hi, ok := utf8Range(buf[:k], int(st.need))
	if !ok || !g.allows(st, lo, hi) {
		return ErrRejected
	}
	if k < int(st.need) {
		st.partial, st.np = buf, uint8(k)
		return nil
	}
	r, _ := utf8.DecodeRune(buf[:k])
	if err := g.acceptRune(st, r, a); err != nil {
		return err
	}
	st.np, st.need = 0, 0
	return nil
}

// Accept advances m by the bytes of p, stopping at the first error: it
// returns how many bytes were accepted.
func (m *Matcher) Accept(p []byte) (int, error) {
	for i, b := range p {
		if err := m.AcceptByte(b); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// AcceptString is Accept for a string.
func (m *Matcher) AcceptString(s string) (int, error) {
	for i := range len(s) {
		if err := m.AcceptByte(s[i]); err != nil {
			return i, err
		}
	}
	return len(s), nil
}

// allows reports whether some stack can read a code point in [lo, hi].
func (g *Grammar) allows(st *state, lo, hi rune) bool {
	for _, s := range st.stacks {
		if g.classes[g.elems[s.pos].arg].overlaps(lo, hi) {
			return true
		}
	}
	return false
}

// acceptRune advances every stack whose top allows r.
func (g *Grammar) acceptRune(st *state, r rune, a *arena) error {
	x := expander{g: g, arena: a}
	if a != nil {
		x.out = a.scratch[:0]
		defer func() { a.scratch = x.out[:0] }()
	}
	matched := false
	for _, s := range st.stacks {
		if !g.classes[g.elems[s.pos].arg].contains(r) {
			continue
		}
		matched = true
		if err := x.expand(s.pos+1, s.parent); err != nil {
			return err
		}
	}
	if !matched {
		return ErrRejected
	}
	st.stacks, st.canEnd = x.finish(), x.canEnd
	return nil
}

// Allows reports whether AcceptByte(b) would succeed (barring a
// *LimitError), without advancing m.
func (m *Matcher) Allows(b byte) bool { return m.g.allowsByte(&m.st, b) }

func (g *Grammar) allowsByte(st *state, b byte) bool {
	if st.np == 0 {
		n := utf8Len(b)
		switch n {
		case 0:
			return false
		case 1:
			return g.allows(st, rune(b), rune(b))
		}
		lo, hi, _ := utf8Range([]byte{b}, n)
		return g.allows(st, lo, hi)
	}
	buf := st.partial
	buf[st.np] = b
	lo, hi, ok := utf8Range(buf[:st.np+1], int(st.need))
	return ok && g.allows(st, lo, hi)
}
