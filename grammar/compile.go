package grammar

import (
	"fmt"
	"strings"
)

// elemKind is what one element of a compiled alternative is.
type elemKind uint8

const (
	kEnd   elemKind = iota // the end of an alternative
	kClass                 // one character from classes[arg]
	kRef                   // the rule rules[arg]
)

// elem is one element of a compiled alternative.
type elem struct {
	kind elemKind
	arg  int32
}

// Grammar is a compiled grammar: immutable, safe for concurrent use, and
// shared by every Matcher made from it.
//
// Shape: the alternatives of all rules lie end to end in elems, each one
// closed by a kEnd element. A position is an index into elems. Rule r's
// alternatives start at the positions rules[r]. Every kRef is followed by
// at least a kEnd, so position+1 after a reference is always valid.
type Grammar struct {
	elems   []elem
	rules   [][]int32 // rule id → the positions its alternatives start at
	classes []class
	root    int32
	lim     Limits

	// start is the matcher's state before any input: the root expanded.
	start []*node
	// startEnd is whether the empty string is in the language.
	startEnd bool
}

// Parse compiles a GBNF grammar with DefaultLimits. Its rule "root" is the
// language. A bad grammar gives a *SyntaxError with the line and column.
func Parse(src string) (*Grammar, error) { return ParseWithLimits(src, DefaultLimits) }

// ParseWithLimits is Parse with other limits (zero fields take the
// defaults).
func ParseWithLimits(src string, lim Limits) (*Grammar, error) {
	lim = lim.withDefaults()
	if len(src) > lim.MaxSourceBytes {
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: fmt.Sprintf("grammar is %d bytes, more than the limit %d", len(src), lim.MaxSourceBytes)}
	}
	p := &parser{src: src, lim: lim, syms: map[string]int32{}, classID: map[string]int32{}}
	if err := p.grammar(); err != nil {
		return nil, err
	}
	for _, d := range p.rules {
		if !d.defined {
			return nil, p.errorf(d.firstRef, "undefined rule %q", d.name)
		}
	}
	root, ok := p.syms["root"]
	if !ok || !p.rules[root].defined {
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: "no rule named root: the grammar's language is the rule root"}
	}
	if err := p.checkLeftRecursion(); err != nil {
		return nil, err
	}
	g := &Grammar{classes: p.classes, root: root, lim: lim}
	g.rules = make([][]int32, len(p.rules))
	for id, d := range p.rules {
		for _, alt := range d.alts {
			g.rules[id] = append(g.rules[id], int32(len(g.elems)))
			g.elems = append(g.elems, alt...)
			g.elems = append(g.elems, elem{kind: kEnd})
		}
	}
	x := expander{g: g}
	for _, a := range g.rules[root] {
		if err := x.expand(a, nil); err != nil {
			return nil, &SyntaxError{Line: 1, Col: 1, Msg: "the grammar's start: " + err.Error()}
		}
	}
	g.start, g.startEnd = x.out, x.canEnd
	return g, nil
}

// checkLeftRecursion refuses a rule that can reach itself before reading a
// character: the matcher would expand it forever. The rules that match
// the empty string (nullable) are found first, in linear time: an
// alternative is nullable once all its elements are; each rule that
// becomes nullable counts down the alternatives it appears in. Then
// "A starts with B" edges (B a reference preceded only by nullable
// elements) must have no cycle.
func (p *parser) checkLeftRecursion() error {
	n := len(p.rules)
	nullable := make([]bool, n)
	type altRef struct{ rule, alt int32 }
	missing := map[altRef]int{} // alternative → elements not yet nullable
	uses := make([][]altRef, n) // rule → alternatives it appears in (once per occurrence)
	var work []int32
	for r, d := range p.rules {
		for a, alt := range d.alts {
			hasClass := false
			for _, e := range alt {
				if e.kind == kClass {
					hasClass = true
				}
			}
			if hasClass {
				continue
			}
			k := altRef{int32(r), int32(a)}
			missing[k] = len(alt)
			for _, e := range alt {
				uses[e.arg] = append(uses[e.arg], k)
			}
			if len(alt) == 0 && !nullable[r] {
				nullable[r] = true
				work = append(work, int32(r))
			}
		}
	}
	for len(work) > 0 {
		r := work[len(work)-1]
		work = work[:len(work)-1]
		for _, k := range uses[r] {
			missing[k]--
			if missing[k] == 0 && !nullable[k.rule] {
				nullable[k.rule] = true
				work = append(work, k.rule)
			}
		}
	}

	// Depth-first search over "starts with" edges, iteratively.
	edges := make([][]int32, n)
	for r, d := range p.rules {
		for _, alt := range d.alts {
			for _, e := range alt {
				if e.kind != kRef {
					break
				}
				edges[r] = append(edges[r], e.arg)
				if !nullable[e.arg] {
					break
				}
			}
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, n)
	type frame struct{ rule, next int32 }
	for s := range n {
		if color[s] != white {
			continue
		}
		stack := []frame{{int32(s), 0}}
		color[s] = grey
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if int(f.next) == len(edges[f.rule]) {
				color[f.rule] = black
				stack = stack[:len(stack)-1]
				continue
			}
			t := edges[f.rule][f.next]
			f.next++
			switch color[t] {
			case white:
				color[t] = grey
				stack = append(stack, frame{t, 0})
			case grey:
				// The cycle is the stack from t's frame up, then t again.
				i := len(stack) - 1
				for stack[i].rule != t {
					i--
				}
				var cycle []int32
				for _, fr := range stack[i:] {
					cycle = append(cycle, fr.rule)
				}
				// Start the chain at a rule the user named, if one is in it.
				for j, r := range cycle {
					if p.rules[r].kind == kindUser {
						cycle = append(cycle[j:], cycle[:j]...)
						break
					}
				}
				t = cycle[0]
				var chain []string
				var star int32 = -1
				for _, r := range append(cycle, t) {
					chain = append(chain, p.describe(r))
					if p.rules[r].kind == kindStar && star < 0 {
						star = r
					}
				}
				if star >= 0 {
					return p.errorf(p.rules[star].pos, "repetition of an item that can match the empty string (left recursion %s)", strings.Join(chain, " -> "))
				}
				return p.errorf(p.rules[t].pos, "left recursion: %s", strings.Join(chain, " -> "))
			}
		}
	}
	return nil
}
