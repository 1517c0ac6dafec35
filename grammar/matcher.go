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
	What  string // "stacks", "depth" or "work"
	Limit int
}

func (e *LimitError) Error() string {
	switch e.What {
	case "stacks":
		return fmt.Sprintf("grammar: more than %d parse stacks at once (the grammar is too ambiguous here)", e.Limit)
	case "depth":
		return fmt.Sprintf("grammar: parse stack deeper than %d rules", e.Limit)
	}
	return fmt.Sprintf("grammar: more than %d expansion steps for one character", e.Limit)
}

// expander builds the stacks that follow a set of positions: it replaces
// each reference by its rule's alternatives and each finished rule by its
// caller's continuation, until every stack's top reads a character or the
// stack is empty (the input may end). Stacks are deduplicated.
type expander struct {
	g      *Grammar
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
	return &node{pos: pos, depth: d, hash: h, parent: parent}, nil
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

// Matcher is the state of matching one input against a Grammar, advanced a
// byte at a time. The zero value is not usable; make one with NewMatcher.
// A Matcher is not safe for concurrent use, but Clone is cheap: the stacks
// are immutable and shared.
type Matcher struct {
	g      *Grammar
	stacks []*node // never modified in place: advancing makes a new slice
	canEnd bool    // the code points read so far form a sentence

	// A UTF-8 sequence not yet complete: its first np bytes, and its
	// length.
	partial  [4]byte
	np, need uint8
}

// NewMatcher returns a matcher at the start of the grammar's language.
func (g *Grammar) NewMatcher() *Matcher {
	return &Matcher{g: g, stacks: g.start, canEnd: g.startEnd}
}

// Clone returns an independent copy of m, in O(1).
func (m *Matcher) Clone() *Matcher {
	c := *m
	return &c
}

// CanEnd reports whether the input so far is a complete sentence of the
// grammar (and no UTF-8 sequence is left unfinished).
func (m *Matcher) CanEnd() bool { return m.canEnd && m.np == 0 }

// Done reports whether no byte can follow: the only way on is to end.
func (m *Matcher) Done() bool { return len(m.stacks) == 0 }

// Stacks returns the number of parse stacks alive, a measure of the
// grammar's ambiguity here.
func (m *Matcher) Stacks() int { return len(m.stacks) }

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
func (m *Matcher) AcceptByte(b byte) error {
	if m.np == 0 {
		n := utf8Len(b)
		switch n {
		case 0:
			return ErrRejected
		case 1:
			return m.acceptRune(rune(b))
		}
		lo, hi, _ := utf8Range([]byte{b}, n)
		if !m.allows(lo, hi) {
			return ErrRejected
		}
		m.partial[0], m.np, m.need = b, 1, uint8(n)
		return nil
	}
	var buf [4]byte
	copy(buf[:], m.partial[:m.np])
	buf[m.np] = b
	k := int(m.np) + 1
	lo, hi, ok := utf8Range(buf[:k], int(m.need))
	if !ok || !m.allows(lo, hi) {
		return ErrRejected
	}
	if k < int(m.need) {
		m.partial, m.np = buf, uint8(k)
		return nil
	}
	r, _ := utf8.DecodeRune(buf[:k])
	if err := m.acceptRune(r); err != nil {
		return err
	}
	m.np, m.need = 0, 0
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
func (m *Matcher) allows(lo, hi rune) bool {
	for _, s := range m.stacks {
		if m.g.classes[m.g.elems[s.pos].arg].overlaps(lo, hi) {
			return true
		}
	}
	return false
}

// acceptRune advances every stack whose top allows r.
func (m *Matcher) acceptRune(r rune) error {
	x := expander{g: m.g}
	matched := false
	for _, s := range m.stacks {
		if !m.g.classes[m.g.elems[s.pos].arg].contains(r) {
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
	m.stacks, m.canEnd = x.out, x.canEnd
	return nil
}

// Allows reports whether AcceptByte(b) would succeed (barring a
// *LimitError), without advancing m.
func (m *Matcher) Allows(b byte) bool {
	if m.np == 0 {
		n := utf8Len(b)
		switch n {
		case 0:
			return false
		case 1:
			return m.allows(rune(b), rune(b))
		}
		lo, hi, _ := utf8Range([]byte{b}, n)
		return m.allows(lo, hi)
	}
	var buf [4]byte
	copy(buf[:], m.partial[:m.np])
	buf[m.np] = b
	lo, hi, ok := utf8Range(buf[:m.np+1], int(m.need))
	return ok && m.allows(lo, hi)
}
