package grammar

import (
	"fmt"
	"strconv"
	"strings"
)

// regexToGBNF translates a pattern of the subset documented in schema.go
// into a GBNF expression for the content of a JSON string (without the
// quotes) whose decoded text the pattern matches. Characters that JSON
// must escape are written escaped. Classes mean what they mean in Go's
// regexp (RE2), which validators in Go use: \d is [0-9], \w is
// [0-9A-Za-z_], \s is [\t\n\f\r ], and . is any character but \n.
func regexToGBNF(pattern string) (string, error) {
	p := &reParser{src: []rune(pattern)}
	start, end := false, false
	if len(p.src) > 0 && p.src[0] == '^' {
		start = true
		p.src = p.src[1:]
	}
	if n := len(p.src); n > 0 && p.src[n-1] == '$' {
		bs := 0
		for i := n - 2; i >= 0 && p.src[i] == '\\'; i-- {
			bs++
		}
		if bs%2 == 0 {
			end = true
			p.src = p.src[:n-1]
		}
	}
	e, err := p.alt()
	if err != nil {
		return "", err
	}
	if p.pos < len(p.src) {
		return "", fmt.Errorf("unexpected %q at character %d of the pattern", p.src[p.pos], p.pos+1)
	}
	if !start {
		e = "char* " + e
	}
	if !end {
		e += " char*"
	}
	return e, nil
}

type reParser struct {
	src   []rune
	pos   int
	depth int
}

func (p *reParser) alt() (string, error) {
	var alts []string
	for {
		c, err := p.concat()
		if err != nil {
			return "", err
		}
		alts = append(alts, c)
		if p.pos < len(p.src) && p.src[p.pos] == '|' {
			p.pos++
			continue
		}
		if len(alts) == 1 {
			return alts[0], nil
		}
		return "( " + strings.Join(alts, " | ") + " )", nil
	}
}

func (p *reParser) concat() (string, error) {
	var items []string
	for p.pos < len(p.src) && p.src[p.pos] != '|' && p.src[p.pos] != ')' {
		a, err := p.atom()
		if err != nil {
			return "", err
		}
		a, err = p.quantifier(a)
		if err != nil {
			return "", err
		}
		items = append(items, a)
	}
	if len(items) == 0 {
		return `""`, nil
	}
	return "( " + strings.Join(items, " ") + " )", nil
}

func (p *reParser) quantifier(a string) (string, error) {
	if p.pos >= len(p.src) {
		return a, nil
	}
	var q string
	switch p.src[p.pos] {
	case '*', '+', '?':
		q = string(p.src[p.pos])
		p.pos++
	case '{':
		end := p.pos + 1
		for end < len(p.src) && p.src[end] != '}' {
			end++
		}
		if end >= len(p.src) {
			return "", fmt.Errorf("unterminated {…} at character %d of the pattern", p.pos+1)
		}
		body := string(p.src[p.pos+1 : end])
		lo, hi, ok := strings.Cut(body, ",")
		m, err1 := strconv.Atoi(lo)
		n := m
		var err2 error
		if ok && hi != "" {
			n, err2 = strconv.Atoi(hi)
		} else if ok {
			n = -1
		}
		if err1 != nil || err2 != nil || m < 0 || m > DefaultLimits.MaxRepeat || n > DefaultLimits.MaxRepeat || n >= 0 && n < m {
			return "", fmt.Errorf("bad repetition {%s} at character %d of the pattern (bounds up to %d)", body, p.pos+1, DefaultLimits.MaxRepeat)
		}
		q = bounds(m, n)
		if !ok {
			q = fmt.Sprintf("{%d}", m)
		}
		p.pos = end + 1
	default:
		return a, nil
	}
	if p.pos < len(p.src) && p.src[p.pos] == '?' { // lazy: the same language
		p.pos++
	}
	if p.pos < len(p.src) && strings.ContainsRune("*+?{", p.src[p.pos]) {
		return "", fmt.Errorf("a repeated repetition at character %d of the pattern", p.pos+1)
	}
	return "( " + a + " )" + q, nil
}

func (p *reParser) atom() (string, error) {
	at := p.pos
	c := p.src[p.pos]
	p.pos++
	switch c {
	case '(':
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > 32 {
			return "", fmt.Errorf("groups nested more than 32 deep")
		}
		if p.pos < len(p.src) && p.src[p.pos] == '?' {
			if p.pos+1 < len(p.src) && p.src[p.pos+1] == ':' {
				p.pos += 2
			} else {
				return "", fmt.Errorf("(? at character %d: only (?: groups are supported", at+1)
			}
		}
		e, err := p.alt()
		if err != nil {
			return "", err
		}
		if p.pos >= len(p.src) || p.src[p.pos] != ')' {
			return "", fmt.Errorf("unclosed group opened at character %d of the pattern", at+1)
		}
		p.pos++
		return e, nil
	case '[':
		return p.class(at)
	case '.':
		return classExpr(class{{'\n', '\n'}}.complement()), nil
	case '\\':
		cl, r, err := p.escape(at)
		if err != nil {
			return "", err
		}
		if cl != nil {
			return classExpr(cl), nil
		}
		return jsonCharExpr(r), nil
	case '^', '$':
		return "", fmt.Errorf("anchor %c at character %d: anchors are supported at the very start and end only", c, at+1)
	case '*', '+', '?', '{':
		return "", fmt.Errorf("nothing to repeat at character %d of the pattern", at+1)
	}
	return jsonCharExpr(c), nil
}

// escape reads what follows a backslash: a class (\d …) or a character.
func (p *reParser) escape(at int) (class, rune, error) {
	if p.pos >= len(p.src) {
		return nil, 0, fmt.Errorf("a pattern cannot end with \\")
	}
	e := p.src[p.pos]
	p.pos++
	digit := class{{'0', '9'}}
	word := class{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}
	space := class{{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}}
	switch e {
	case 'd':
		return digit, 0, nil
	case 'D':
		return digit.complement(), 0, nil
	case 'w':
		return word, 0, nil
	case 'W':
		return word.complement(), 0, nil
	case 's':
		return space, 0, nil
	case 'S':
		return space.complement(), 0, nil
	case 'n':
		return nil, '\n', nil
	case 't':
		return nil, '\t', nil
	case 'r':
		return nil, '\r', nil
	case 'f':
		return nil, '\f', nil
	case 'v':
		return nil, '\v', nil
	}
	if e < 128 && !('a' <= e && e <= 'z' || 'A' <= e && e <= 'Z' || '0' <= e && e <= '9') {
		return nil, e, nil // escaped punctuation
	}
	return nil, 0, fmt.Errorf("escape \\%c at character %d of the pattern is not supported", e, at+1)
}

func (p *reParser) class(at int) (string, error) {
	neg := p.pos < len(p.src) && p.src[p.pos] == '^'
	if neg {
		p.pos++
	}
	var c class
	for {
		if p.pos >= len(p.src) {
			return "", fmt.Errorf("unterminated class opened at character %d of the pattern", at+1)
		}
		if p.src[p.pos] == ']' {
			p.pos++
			break
		}
		lo := p.src[p.pos]
		p.pos++
		if lo == '\\' {
			cl, r, err := p.escape(p.pos - 1)
			if err != nil {
				return "", err
			}
			if cl != nil {
				c = append(c, cl...)
				continue
			}
			lo = r
		} else if lo == '[' && p.pos < len(p.src) && p.src[p.pos] == ':' {
			return "", fmt.Errorf("POSIX classes [: at character %d are not supported", p.pos)
		}
		hi := lo
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			hi = p.src[p.pos+1]
			p.pos += 2
			if hi == '\\' {
				cl, r, err := p.escape(p.pos - 1)
				if err != nil || cl != nil {
					return "", fmt.Errorf("bad range end in the class at character %d of the pattern", at+1)
				}
				hi = r
			}
			if hi < lo {
				return "", fmt.Errorf("reversed range in the class at character %d of the pattern", at+1)
			}
		}
		c = append(c, rng{lo, hi})
	}
	if len(c) == 0 {
		return "", fmt.Errorf("empty class at character %d of the pattern", at+1)
	}
	c = c.normalize()
	if neg {
		c = c.complement()
	}
	e := classExpr(c)
	if e == "" {
		return "", fmt.Errorf("the class at character %d of the pattern matches no character", at+1)
	}
	return e, nil
}

// jsonUnsafe are the characters a JSON string writes escaped (and 0x7F,
// which the grammar's char rule escapes too).
var jsonUnsafe = class{{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0x7F, 0x7F}}

// classExpr writes the JSON string content of one character of c: the
// safe characters as a GBNF class, the others as their escapes.
func classExpr(c class) string {
	safe := intersect(c, jsonUnsafe.complement())
	safe = intersect(safe, class{{0xD800, 0xDFFF}}.complement())
	var alts []string
	if len(safe) > 0 {
		var b strings.Builder
		b.WriteByte('[')
		for _, r := range safe {
			b.WriteString(classChar(r.lo))
			if r.hi != r.lo {
				b.WriteByte('-')
				b.WriteString(classChar(r.hi))
			}
		}
		b.WriteByte(']')
		alts = append(alts, b.String())
	}
	for _, r := range intersect(c, jsonUnsafe) {
		for ch := r.lo; ch <= r.hi; ch++ {
			alts = append(alts, jsonCharExpr(ch))
		}
	}
	if len(alts) == 0 { // only surrogates, which no string holds: the callers refuse this
		return ""
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return "( " + strings.Join(alts, " | ") + " )"
}

func classChar(r rune) string {
	switch {
	case r > 0x20 && r < 0x7F && !strings.ContainsRune(`]\-^[`, r):
		return string(r)
	case r <= 0xFFFF:
		return fmt.Sprintf(`\u%04X`, r)
	}
	return fmt.Sprintf(`\U%08X`, r)
}

// jsonCharExpr writes one character as it appears in a JSON string.
func jsonCharExpr(r rune) string {
	switch r {
	case '"':
		return gbnfQuote(`\"`)
	case '\\':
		return gbnfQuote(`\\`)
	case '\n':
		return gbnfQuote(`\n`)
	case '\t':
		return gbnfQuote(`\t`)
	case '\r':
		return gbnfQuote(`\r`)
	case '\b':
		return gbnfQuote(`\b`)
	case '\f':
		return gbnfQuote(`\f`)
	}
	if r < 0x20 || r == 0x7F {
		return gbnfQuote(fmt.Sprintf(`\u%04x`, r))
	}
	return gbnfQuote(string(r))
}

// intersect returns a ∩ b, both normalized.
func intersect(a, b class) class {
	var out class
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo, hi := max(a[i].lo, b[j].lo), min(a[i].hi, b[j].hi)
		if lo <= hi {
			out = append(out, rng{lo, hi})
		}
		if a[i].hi < b[j].hi {
			i++
		} else {
			j++
		}
	}
	return out
}
