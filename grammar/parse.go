package grammar

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits bound what a grammar may cost. Parse uses DefaultLimits; a zero
// field in a Limits given to ParseWithLimits takes the default's value.
type Limits struct {
	// MaxSourceBytes bounds the grammar's text.
	MaxSourceBytes int
	// MaxRules bounds the number of distinct rule names.
	MaxRules int
	// MaxNesting bounds how deeply groups ( … ) nest.
	MaxNesting int
	// MaxRepeat bounds the numbers m and n in {m}, {m,} and {m,n}.
	MaxRepeat int
	// MaxElements bounds the compiled grammar: one element per character
	// class or rule reference, one per alternative's end, after the
	// repetitions are written out ({m,n} costs about 3n elements). The
	// parser counts as it reads, a little generously (a group's elements
	// count again when it is repeated).
	MaxElements int
	// MaxStacks bounds the number of parse stacks a matcher holds at once
	// (an ambiguous grammar can keep several alive).
	MaxStacks int
	// MaxDepth bounds the depth of one parse stack: how many rules are
	// open at once, such as nested JSON arrays.
	MaxDepth int
}

// DefaultLimits are the limits Parse applies.
var DefaultLimits = Limits{
	MaxSourceBytes: 1 << 20,
	MaxRules:       10000,
	MaxNesting:     64,
	MaxRepeat:      1000,
	MaxElements:    1 << 18,
	MaxStacks:      1024,
	MaxDepth:       2048,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	l.MaxSourceBytes = pick(l.MaxSourceBytes, d.MaxSourceBytes)
	l.MaxRules = pick(l.MaxRules, d.MaxRules)
	l.MaxNesting = pick(l.MaxNesting, d.MaxNesting)
	l.MaxRepeat = pick(l.MaxRepeat, d.MaxRepeat)
	l.MaxElements = pick(l.MaxElements, d.MaxElements)
	l.MaxStacks = pick(l.MaxStacks, d.MaxStacks)
	l.MaxDepth = pick(l.MaxDepth, d.MaxDepth)
	return l
}

// SyntaxError is a grammar that cannot be used, with the place where the
// problem is: Line and Col count from 1, Col in characters (code points).
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("grammar:%d:%d: %s", e.Line, e.Col, e.Msg)
}

// lineCol turns a byte offset of src into a 1-based line and column; the
// column counts code points (an invalid byte counts as one).
func lineCol(src string, off int) (line, col int) {
	off = min(max(off, 0), len(src))
	line = 1 + strings.Count(src[:off], "\n")
	start := strings.LastIndexByte(src[:off], '\n') + 1
	return line, 1 + utf8.RuneCountInString(src[start:off])
}

const maxRune = utf8.MaxRune // 0x10FFFF

const inf = -1 // an open repetition maximum

// ruleKind says where a rule came from; the synthesized kinds are named by
// their place in the source in error messages.
type ruleKind uint8

const (
	kindUser  ruleKind = iota // name ::= …
	kindGroup                 // ( a | b ), or a repeated multi-element item
	kindStar                  // x* and the open tail of x+ and x{m,}: S ::= x S |
	kindOpt                   // x? and the optional tail of x{m,n}: O ::= x O' |
)

// ruleDef is a rule while the grammar is being read.
type ruleDef struct {
	name     string
	kind     ruleKind
	defined  bool
	pos      int // byte offset: the definition (user rules) or the construct
	firstRef int // byte offset of the first reference, -1 if none
	alts     [][]elem
}

// parser reads GBNF text into rule definitions.
type parser struct {
	src     string
	pos     int
	lim     Limits
	syms    map[string]int32
	rules   []*ruleDef
	classes []class
	classID map[string]int32
	nelems  int // elements emitted so far, ends of alternatives included
	nest    int
	named   int
}

func (p *parser) errorf(off int, format string, args ...any) error {
	line, col := lineCol(p.src, off)
	return &SyntaxError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// describe names a rule for an error message.
func (p *parser) describe(r int32) string {
	d := p.rules[r]
	line, col := lineCol(p.src, d.pos)
	switch d.kind {
	case kindGroup:
		return fmt.Sprintf("(group at %d:%d)", line, col)
	case kindStar:
		return fmt.Sprintf("(repetition at %d:%d)", line, col)
	case kindOpt:
		return fmt.Sprintf("(optional part at %d:%d)", line, col)
	}
	return d.name
}

// quoteAt shows the text at off for an error message.
func (p *parser) quoteAt(off int) string {
	if off >= len(p.src) {
		return "end of input"
	}
	r, _ := utf8.DecodeRuneInString(p.src[off:])
	return fmt.Sprintf("%q", r)
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// space skips blanks and comments; newlines too when nl is set.
func (p *parser) space(nl bool) {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' && p.src[p.pos] != '\r' {
				p.pos++
			}
		case (c == '\n' || c == '\r') && nl:
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) peek(c byte) bool { return p.pos < len(p.src) && p.src[p.pos] == c }

// symbol returns the rule id of name, creating it on first mention.
func (p *parser) symbol(name string, off int) (int32, error) {
	if id, ok := p.syms[name]; ok {
		return id, nil
	}
	if p.named >= p.lim.MaxRules {
		return 0, p.errorf(off, "more than %d rule names", p.lim.MaxRules)
	}
	p.named++
	id := int32(len(p.rules))
	p.rules = append(p.rules, &ruleDef{name: name, kind: kindUser, pos: off, firstRef: -1})
	p.syms[name] = id
	return id, nil
}

// newRule adds a synthesized rule for the construct at off.
func (p *parser) newRule(kind ruleKind, off int, alts [][]elem) (int32, error) {
	n := 0
	for _, a := range alts {
		n += len(a) + 1
	}
	if err := p.spend(n, off); err != nil {
		return 0, err
	}
	id := int32(len(p.rules))
	p.rules = append(p.rules, &ruleDef{kind: kind, defined: true, pos: off, firstRef: off, alts: alts})
	return id, nil
}

// spend accounts for n more elements.
func (p *parser) spend(n, off int) error {
	p.nelems += n
	if p.nelems > p.lim.MaxElements {
		return p.errorf(off, "grammar too large: more than %d elements once repetitions are written out", p.lim.MaxElements)
	}
	return nil
}

// classElem interns a character class.
func (p *parser) classElem(c class) elem {
	key := c.key()
	id, ok := p.classID[key]
	if !ok {
		id = int32(len(p.classes))
		p.classes = append(p.classes, c)
		p.classID[key] = id
	}
	return elem{kind: kClass, arg: id}
}

func (p *parser) grammar() error {
	p.space(true)
	for p.pos < len(p.src) {
		if err := p.rule(); err != nil {
			return err
		}
		p.space(true)
	}
	return nil
}

// rule reads `name ::= alternatives` up to the end of its line.
func (p *parser) rule() error {
	start := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return p.errorf(start, "expected a rule name, found %s", p.quoteAt(start))
	}
	name := p.src[start:p.pos]
	p.space(false)
	if !strings.HasPrefix(p.src[p.pos:], "::=") {
		return p.errorf(p.pos, "expected ::= after the rule name %q, found %s", name, p.quoteAt(p.pos))
	}
	p.pos += 3
	p.space(true)
	id, err := p.symbol(name, start)
	if err != nil {
		return err
	}
	d := p.rules[id]
	if d.defined {
		line, col := lineCol(p.src, d.pos)
		return p.errorf(start, "rule %q defined twice (first at %d:%d)", name, line, col)
	}
	d.defined, d.pos = true, start
	alts, err := p.alternatives(false)
	if err != nil {
		return err
	}
	if err := p.spend(len(alts), start); err != nil { // the alternatives' ends
		return err
	}
	d.alts = alts
	p.space(false)
	if p.pos < len(p.src) && p.src[p.pos] != '\n' && p.src[p.pos] != '\r' {
		return p.errorf(p.pos, "expected the end of the line after rule %q, found %s", name, p.quoteAt(p.pos))
	}
	return nil
}

// alternatives reads seq | seq | …; nested says we are inside ( … ), where
// newlines are blanks. At the top level a newline ends the rule, unless the
// next line goes on with |.
func (p *parser) alternatives(nested bool) ([][]elem, error) {
	var alts [][]elem
	for {
		seq, err := p.sequence(nested)
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		if !nested {
			save := p.pos
			p.space(true)
			if !p.peek('|') {
				p.pos = save
			}
		}
		if !p.peek('|') {
			return alts, nil
		}
		p.pos++
		p.space(true)
	}
}

// sequence reads items up to something that cannot start one.
func (p *parser) sequence(nested bool) ([]elem, error) {
	var seq []elem
	for p.pos < len(p.src) {
		start := p.pos
		var frag []elem
		switch c := p.src[p.pos]; {
		case c == '"':
			f, err := p.literal()
			if err != nil {
				return nil, err
			}
			frag = f
		case c == '[':
			cl, err := p.charClass()
			if err != nil {
				return nil, err
			}
			frag = []elem{p.classElem(cl)}
		case c == '.':
			p.pos++
			frag = []elem{p.classElem(class{{0, maxRune}})}
		case c == '(':
			f, err := p.group()
			if err != nil {
				return nil, err
			}
			frag = f
		case isNameByte(c):
			for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
				p.pos++
			}
			id, err := p.symbol(p.src[start:p.pos], start)
			if err != nil {
				return nil, err
			}
			if p.rules[id].firstRef < 0 {
				p.rules[id].firstRef = start
			}
			frag = []elem{{kind: kRef, arg: id}}
		default:
			return seq, nil
		}
		if err := p.spend(len(frag), start); err != nil {
			return nil, err
		}
		p.space(nested)
		for p.pos < len(p.src) {
			op := p.pos
			lo, hi := 0, 0
			switch p.src[p.pos] {
			case '*':
				lo, hi = 0, inf
				p.pos++
			case '+':
				lo, hi = 1, inf
				p.pos++
			case '?':
				lo, hi = 0, 1
				p.pos++
			case '{':
				var err error
				if lo, hi, err = p.bounds(); err != nil {
					return nil, err
				}
			default:
				goto done
			}
			f, err := p.repeat(frag, lo, hi, start, op)
			if err != nil {
				return nil, err
			}
			frag = f
			p.space(nested)
		}
	done:
		seq = append(seq, frag...)
	}
	return seq, nil
}

// group reads ( alternatives ). One alternative is inlined; several become
// a synthesized rule.
func (p *parser) group() ([]elem, error) {
	open := p.pos
	p.nest++
	defer func() { p.nest-- }()
	if p.nest > p.lim.MaxNesting {
		return nil, p.errorf(open, "groups nested more than %d deep", p.lim.MaxNesting)
	}
	p.pos++
	p.space(true)
	alts, err := p.alternatives(true)
	if err != nil {
		return nil, err
	}
	p.space(true)
	if !p.peek(')') {
		line, col := lineCol(p.src, open)
		return nil, p.errorf(p.pos, "expected ) to close the group opened at %d:%d, found %s", line, col, p.quoteAt(p.pos))
	}
	p.pos++
	if len(alts) == 1 {
		return alts[0], nil
	}
	id, err := p.newRule(kindGroup, open, alts)
	if err != nil {
		return nil, err
	}
	return []elem{{kind: kRef, arg: id}}, nil
}

// bounds reads {m}, {m,}, {m,n} or {,n}.
func (p *parser) bounds() (lo, hi int, err error) {
	open := p.pos
	p.pos++
	p.space(false)
	num := func() (int, bool, error) {
		start := p.pos
		v := 0
		for p.pos < len(p.src) && '0' <= p.src[p.pos] && p.src[p.pos] <= '9' {
			if v <= p.lim.MaxRepeat {
				v = v*10 + int(p.src[p.pos]-'0')
			}
			p.pos++
		}
		if p.pos == start {
			return 0, false, nil
		}
		if v > p.lim.MaxRepeat {
			return 0, false, p.errorf(start, "repetition bound %s exceeds the limit %d", p.src[start:p.pos], p.lim.MaxRepeat)
		}
		p.space(false)
		return v, true, nil
	}
	lo, haveLo, err := num()
	if err != nil {
		return 0, 0, err
	}
	switch {
	case p.peek('}') && haveLo:
		p.pos++
		return lo, lo, nil
	case p.peek(','):
		p.pos++
		p.space(false)
		hi, haveHi, err := num()
		if err != nil {
			return 0, 0, err
		}
		if !p.peek('}') {
			return 0, 0, p.errorf(p.pos, "expected } to close the repetition bounds opened at %s, found %s", p.at(open), p.quoteAt(p.pos))
		}
		p.pos++
		if !haveHi {
			if !haveLo {
				return 0, 0, p.errorf(open, "repetition bounds {,} have no number")
			}
			return lo, inf, nil
		}
		if hi < lo {
			return 0, 0, p.errorf(open, "repetition maximum %d is less than its minimum %d", hi, lo)
		}
		return lo, hi, nil
	}
	if !haveLo {
		return 0, 0, p.errorf(p.pos, "expected a number in repetition bounds, found %s", p.quoteAt(p.pos))
	}
	return 0, 0, p.errorf(p.pos, "expected , or } in the repetition bounds opened at %s, found %s", p.at(open), p.quoteAt(p.pos))
}

func (p *parser) at(off int) string {
	line, col := lineCol(p.src, off)
	return fmt.Sprintf("%d:%d", line, col)
}

// repeat writes frag{lo,hi} out as plain rules:
//
//	x{2,4}  →  x x O1     O1 ::= x O2 |     O2 ::= x |
//	x{2,}   →  x x S      S  ::= x S |
//
// The recursive references sit at the end of their alternatives, so the
// matcher takes them as tail calls and its stacks do not grow with the
// count.
func (p *parser) repeat(frag []elem, lo, hi, start, op int) ([]elem, error) {
	var x elem
	if len(frag) == 1 {
		x = frag[0]
	} else {
		id, err := p.newRule(kindGroup, start, [][]elem{frag})
		if err != nil {
			return nil, err
		}
		x = elem{kind: kRef, arg: id}
	}
	if err := p.spend(lo+1, op); err != nil {
		return nil, err
	}
	out := make([]elem, 0, lo+1)
	for range lo {
		out = append(out, x)
	}
	switch {
	case hi == inf:
		id := int32(len(p.rules))
		if _, err := p.newRule(kindStar, op, [][]elem{{x, {kind: kRef, arg: id}}, {}}); err != nil {
			return nil, err
		}
		out = append(out, elem{kind: kRef, arg: id})
	case hi > lo:
		var inner int32 = -1
		for range hi - lo {
			alt := []elem{x}
			if inner >= 0 {
				alt = append(alt, elem{kind: kRef, arg: inner})
			}
			id, err := p.newRule(kindOpt, op, [][]elem{alt, {}})
			if err != nil {
				return nil, err
			}
			inner = id
		}
		out = append(out, elem{kind: kRef, arg: inner})
	}
	return out, nil
}

// literal reads "…": one single-character class per character.
func (p *parser) literal() ([]elem, error) {
	open := p.pos
	p.pos++
	var out []elem
	for {
		if p.pos >= len(p.src) || p.src[p.pos] == '\n' || p.src[p.pos] == '\r' {
			return nil, p.errorf(open, "unterminated string literal")
		}
		if p.src[p.pos] == '"' {
			p.pos++
			return out, nil
		}
		r, err := p.char()
		if err != nil {
			return nil, err
		}
		if len(out) >= p.lim.MaxElements {
			return nil, p.errorf(open, "grammar too large: more than %d elements", p.lim.MaxElements)
		}
		out = append(out, p.classElem(class{{r, r}}))
	}
}

// char reads one character of a literal or class: a UTF-8 sequence or an
// escape.
func (p *parser) char() (rune, error) {
	start := p.pos
	c := p.src[p.pos]
	if c != '\\' {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if r == utf8.RuneError && n <= 1 {
			return 0, p.errorf(start, "invalid UTF-8 byte 0x%02x", c)
		}
		p.pos += n
		return r, nil
	}
	p.pos++
	if p.pos >= len(p.src) {
		return 0, p.errorf(start, "unfinished escape at the end of input")
	}
	e := p.src[p.pos]
	p.pos++
	switch e {
	case 'n':
		return '\n', nil
	case 't':
		return '\t', nil
	case 'r':
		return '\r', nil
	case '\\', '"', '\'', '[', ']', '-', '^', '/':
		return rune(e), nil
	case 'x', 'u', 'U':
		n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
		var v rune
		for i := range n {
			if p.pos >= len(p.src) {
				return 0, p.errorf(start, "escape \\%c needs %d hex digits, found %d", e, n, i)
			}
			h := p.src[p.pos]
			var d byte
			switch {
			case '0' <= h && h <= '9':
				d = h - '0'
			case 'a' <= h && h <= 'f':
				d = h - 'a' + 10
			case 'A' <= h && h <= 'F':
				d = h - 'A' + 10
			default:
				return 0, p.errorf(start, "escape \\%c needs %d hex digits, found %d", e, n, i)
			}
			v = v<<4 | rune(d)
			p.pos++
		}
		if v > maxRune || 0xD800 <= v && v <= 0xDFFF {
			return 0, p.errorf(start, "escape %s is not a Unicode scalar value", p.src[start:p.pos])
		}
		return v, nil
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos-1:])
	return 0, p.errorf(start, "unknown escape \\%c", r)
}

// charClass reads […] or [^…].
func (p *parser) charClass() (class, error) {
	open := p.pos
	p.pos++
	neg := p.peek('^')
	if neg {
		p.pos++
	}
	var c class
	for {
		if p.pos >= len(p.src) || p.src[p.pos] == '\n' || p.src[p.pos] == '\r' {
			return nil, p.errorf(open, "unterminated character class")
		}
		if p.src[p.pos] == ']' {
			p.pos++
			break
		}
		at := p.pos
		lo, err := p.char()
		if err != nil {
			return nil, err
		}
		hi := lo
		if p.peek('-') && p.pos+1 < len(p.src) && p.src[p.pos+1] != ']' {
			p.pos++
			if p.src[p.pos] == '\n' || p.src[p.pos] == '\r' {
				return nil, p.errorf(open, "unterminated character class")
			}
			if hi, err = p.char(); err != nil {
				return nil, err
			}
			if hi < lo {
				return nil, p.errorf(at, "character range %s is reversed", p.src[at:p.pos])
			}
		}
		if len(c) >= p.lim.MaxElements {
			return nil, p.errorf(open, "character class too large")
		}
		c = append(c, rng{lo, hi})
	}
	if len(c) == 0 {
		return nil, p.errorf(open, "empty character class")
	}
	c = c.normalize()
	if neg {
		c = c.complement()
		if len(c) == 0 {
			return nil, p.errorf(open, "negated character class matches no character")
		}
	}
	return c, nil
}

// rng is an inclusive range of code points.
type rng struct{ lo, hi rune }

// class is a set of code points: sorted, disjoint, non-adjacent ranges.
type class []rng

func (c class) normalize() class {
	slices.SortFunc(c, func(a, b rng) int { return int(a.lo - b.lo) })
	out := c[:0]
	for _, r := range c {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (c class) complement() class {
	var out class
	next := rune(0)
	for _, r := range c {
		if r.lo > next {
			out = append(out, rng{next, r.lo - 1})
		}
		next = r.hi + 1
	}
	if next <= maxRune {
		out = append(out, rng{next, maxRune})
	}
	return out
}

func (c class) key() string {
	b := make([]byte, 0, 8*len(c))
	for _, r := range c {
		b = binary.LittleEndian.AppendUint32(b, uint32(r.lo))
		b = binary.LittleEndian.AppendUint32(b, uint32(r.hi))
	}
	return string(b)
}

// contains reports whether r is in c.
func (c class) contains(r rune) bool {
	lo, hi := 0, len(c)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case r < c[m].lo:
			hi = m
		case r > c[m].hi:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// overlaps reports whether c has a code point in [lo, hi].
func (c class) overlaps(lo, hi rune) bool {
	i, _ := slices.BinarySearchFunc(c, lo, func(r rng, v rune) int {
		if r.hi < v {
			return -1
		}
		return 1
	})
	return i < len(c) && c[i].lo <= hi
}
