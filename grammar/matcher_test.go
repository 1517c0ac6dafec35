package grammar

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func mustParse(t testing.TB, src string) *Grammar {
	t.Helper()
	g, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return g
}

// allowedBytes lists the bytes m allows next.
func allowedBytes(m *Matcher) []byte {
	var out []byte
	for b := range 256 {
		if m.Allows(byte(b)) {
			out = append(out, byte(b))
		}
	}
	return out
}

// TestPartialUTF8 checks that a byte starting or continuing a UTF-8
// sequence is allowed exactly when some character it may complete to is.
func TestPartialUTF8(t *testing.T) {
	g := mustParse(t, `root ::= "é" | "日" | "😀"`) // C3 A9 | E6 97 A5 | F0 9F 98 80
	m := g.NewMatcher()
	if got := string(allowedBytes(m)); got != "\xc3\xe6\xf0" {
		t.Fatalf("first bytes %x, want c3 e6 f0", got)
	}
	if err := m.AcceptByte(0xC4); !errors.Is(err, ErrRejected) {
		t.Fatalf("0xC4 (U+0100…U+013F): %v, want ErrRejected", err)
	}
	for i, b := range []byte("😀") {
		if m.CanEnd() {
			t.Fatalf("CanEnd after %d bytes of a 4-byte character", i)
		}
		if got := allowedBytes(m); i > 0 && (len(got) != 1 || got[0] != b) {
			t.Fatalf("after %d bytes allowed %x, want %x", i, got, b)
		}
		if err := m.AcceptByte(b); err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
	}
	if !m.CanEnd() || !m.Done() {
		t.Fatalf("CanEnd %v Done %v after 😀, want both", m.CanEnd(), m.Done())
	}
}

// TestInvalidUTF8 checks that no grammar accepts a byte sequence that is
// not UTF-8: overlong forms, surrogates, stray continuation bytes, bytes
// that never occur, and code points past U+10FFFF.
func TestInvalidUTF8(t *testing.T) {
	g := mustParse(t, `root ::= .*`)
	for _, s := range []string{"\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80", "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5", "\xff", "a\xc3a"} {
		m := g.NewMatcher()
		if _, err := m.AcceptString(s); !errors.Is(err, ErrRejected) {
			t.Errorf("%x: %v, want ErrRejected", s, err)
		}
	}
	// Every valid boundary character goes through.
	for _, r := range []rune{0, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF} {
		m := g.NewMatcher()
		s := string(r)
		if _, err := m.AcceptString(s); err != nil || !m.CanEnd() {
			t.Errorf("U+%04X: %v, CanEnd %v", r, err, m.CanEnd())
		}
	}
}

// TestAllowsAgreesWithAccept compares Allows with AcceptByte on every byte
// along a JSON document.
func TestAllowsAgreesWithAccept(t *testing.T) {
	g := mustParse(t, jsonGBNF)
	doc := `{"name": "日本 😀", "list": [1, -2.5e3, true, null], "o": {}}`
	m := g.NewMatcher()
	for i := range len(doc) {
		for b := range 256 {
			c := m.Clone()
			err := c.AcceptByte(byte(b))
			if (err == nil) != m.Allows(byte(b)) {
				t.Fatalf("at %d, byte %02x: Allows %v, AcceptByte %v", i, b, m.Allows(byte(b)), err)
			}
		}
		if err := m.AcceptByte(doc[i]); err != nil {
			t.Fatalf("at %d (%q): %v", i, doc[i:], err)
		}
	}
	if !m.CanEnd() {
		t.Fatal("the document is complete but CanEnd is false")
	}
}

// TestCloneIsIndependent advances a clone and checks the original did not
// move, and a rejected byte leaves a matcher as it was.
func TestCloneIsIndependent(t *testing.T) {
	g := mustParse(t, `root ::= "ab" | "ac"`)
	m := g.NewMatcher()
	if err := m.AcceptByte('a'); err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	if err := c.AcceptByte('b'); err != nil || !c.CanEnd() {
		t.Fatalf("clone: %v, CanEnd %v", err, c.CanEnd())
	}
	if err := m.AcceptByte('x'); !errors.Is(err, ErrRejected) {
		t.Fatalf("x: %v, want ErrRejected", err)
	}
	if m.CanEnd() || m.Stacks() != 2 {
		t.Fatalf("original moved: CanEnd %v, %d stacks", m.CanEnd(), m.Stacks())
	}
	if err := m.AcceptByte('c'); err != nil || !m.CanEnd() {
		t.Fatalf("original: %v, CanEnd %v", err, m.CanEnd())
	}
}

// TestDedup checks that equivalent parses collapse into one stack.
func TestDedup(t *testing.T) {
	g := mustParse(t, `root ::= ("a" | "a" | "a")* "b"`)
	m := g.NewMatcher()
	for range 50 {
		if err := m.AcceptByte('a'); err != nil {
			t.Fatal(err)
		}
	}
	// One stack per alternative that reads an "a", one for the "b".
	if m.Stacks() != 4 {
		t.Fatalf("%d stacks after 50 a's, want 4", m.Stacks())
	}
}

// TestStackLimit makes a grammar whose ambiguity doubles the stacks with
// every character: each "a" may be closed later by a "b" or a "c".
func TestStackLimit(t *testing.T) {
	g := mustParse(t, "root ::= e\ne ::= \"a\" e \"b\" | \"a\" e \"c\" | \"\"")
	m := g.NewMatcher()
	_, err := m.AcceptString(strings.Repeat("a", 20))
	var le *LimitError
	if !errors.As(err, &le) || le.What != "stacks" || le.Limit != DefaultLimits.MaxStacks {
		t.Fatalf("error %v, want the stack limit %d", err, DefaultLimits.MaxStacks)
	}
	// Small inputs work.
	g2 := mustParse(t, "root ::= e\ne ::= \"a\" e \"b\" | \"a\" e \"c\" | \"\"")
	if ok, err := matches(g2, "aaacbb"); !ok || err != nil {
		t.Fatalf("aaacbb: %v %v", ok, err)
	}
}

// TestDepthLimit nests parentheses past MaxDepth.
func TestDepthLimit(t *testing.T) {
	g, err := ParseWithLimits("root ::= p\np ::= \"(\" p \")\" | \"x\"", Limits{MaxDepth: 100})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := matches(g, strings.Repeat("(", 50)+"x"+strings.Repeat(")", 50)); !ok || err != nil {
		t.Fatalf("50 deep: %v %v", ok, err)
	}
	_, err = g.NewMatcher().AcceptString(strings.Repeat("(", 200))
	var le *LimitError
	if !errors.As(err, &le) || le.What != "depth" {
		t.Fatalf("200 deep: %v, want the depth limit", err)
	}
}

// TestTailCalls checks that right recursion and long repetitions do not
// grow the stacks: 100000 items of a list stay one frame deep.
func TestTailCalls(t *testing.T) {
	g := mustParse(t, "root ::= item*\nitem ::= [a-z] \",\"")
	m := g.NewMatcher()
	for range 100000 {
		if _, err := m.AcceptString("x,"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range m.st.stacks {
		if s.depth > 2 {
			t.Fatalf("a stack %d deep after 100000 items", s.depth)
		}
	}
}

func TestSourceLimit(t *testing.T) {
	_, err := ParseWithLimits(`root ::= "a"`+strings.Repeat(" ", 100), Limits{MaxSourceBytes: 64})
	if err == nil || !strings.Contains(err.Error(), "more than the limit 64") {
		t.Fatalf("error %v, want the source limit", err)
	}
	_, err = ParseWithLimits("root ::= a\na ::= b\nb ::= \"x\"", Limits{MaxRules: 2})
	if err == nil || !strings.Contains(err.Error(), "more than 2 rule names") {
		t.Fatalf("error %v, want the rule limit", err)
	}
	_, err = Parse(`root ::= ("a"{1000}){1000} ("b"{0,1000}){1000}` + strings.Repeat(` "c"{0,1000}`, 200))
	if err == nil || !strings.Contains(err.Error(), "grammar too large") {
		t.Fatalf("error %v, want the element limit", err)
	}
}

// FuzzParse parses anything: never a panic or a hang; a grammar that
// parses is matched against its own text and the seeds.
func FuzzParse(f *testing.F) {
	for _, tc := range grammarTable {
		f.Add(tc.src, strings.Join(tc.accept, ""))
	}
	for _, tc := range badGrammars {
		f.Add(tc.src, "x")
	}
	f.Fuzz(func(t *testing.T, src, input string) {
		g, err := ParseWithLimits(src, Limits{MaxElements: 1 << 14, MaxStacks: 64, MaxDepth: 64})
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 || se.Col < 1 {
				t.Fatalf("error %v is not a positioned *SyntaxError", err)
			}
			return
		}
		for _, s := range []string{input, src} {
			m := g.NewMatcher()
			n, err := m.AcceptString(s)
			if err == nil && n != len(s) {
				t.Fatalf("accepted %d of %d bytes without an error", n, len(s))
			}
			if err == nil && m.CanEnd() && !utf8.ValidString(s) {
				t.Fatalf("accepted invalid UTF-8 %q", s)
			}
		}
		// Allows agrees with AcceptByte along the input.
		m := g.NewMatcher()
		for i := range len(input) {
			allowed := m.Allows(input[i])
			err := m.AcceptByte(input[i])
			var le *LimitError
			if errors.As(err, &le) {
				return
			}
			if allowed != (err == nil) {
				t.Fatalf("at %d: Allows %v, AcceptByte %v", i, allowed, err)
			}
			if err != nil {
				return
			}
		}
	})
}

// TestWorkedExample replays the package documentation's example.
func TestWorkedExample(t *testing.T) {
	g := mustParse(t, "root ::= \"[\" items? \"]\"\nitems ::= num (\",\" num)*\nnum ::= [0-9]+")
	m := g.NewMatcher()
	for _, step := range []struct {
		b      byte
		stacks int
		end    bool
	}{{'[', 2, false}, {'7', 3, false}, {']', 0, true}} {
		if err := m.AcceptByte(step.b); err != nil {
			t.Fatalf("%c: %v", step.b, err)
		}
		if m.Stacks() != step.stacks || m.CanEnd() != step.end {
			t.Fatalf("after %c: %d stacks, CanEnd %v; want %d, %v", step.b, m.Stacks(), m.CanEnd(), step.stacks, step.end)
		}
	}
	var tops []int32
	m = g.NewMatcher()
	m.AcceptString("[7")
	for _, s := range m.st.stacks {
		var frames []int32
		for n := s; n != nil; n = n.parent {
			frames = append([]int32{n.pos}, frames...)
		}
		tops = append(tops, frames...)
		tops = append(tops, -1)
	}
	want := []int32{2, 5, 20, -1, 2, 17, 13, -1, 2, -1}
	if !slices.Equal(tops, want) {
		t.Fatalf("stacks after \"[7\": %v, want %v", tops, want)
	}
}
