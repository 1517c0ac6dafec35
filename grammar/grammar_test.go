package grammar

import (
	"errors"
	"strings"
	"testing"
)

// matches feeds s byte by byte and reports whether the grammar accepts it
// as a whole sentence.
func matches(g *Grammar, s string) (bool, error) {
	m := g.NewMatcher()
	if _, err := m.AcceptString(s); err != nil {
		if errors.Is(err, ErrRejected) {
			return false, nil
		}
		return false, err
	}
	return m.CanEnd(), nil
}

// matchesSplit feeds s as "tokens" of the given sizes, cloning the matcher
// at every token boundary as a sampler trying candidates would, and
// advancing a throwaway clone first.
func matchesSplit(g *Grammar, s string, size int) bool {
	m := g.NewMatcher()
	for i := 0; i < len(s); i += size {
		tok := s[i:min(i+size, len(s))]
		probe := m.Clone()
		if _, err := probe.AcceptString(tok); err != nil {
			return false
		}
		if _, err := probe.AcceptString("\xff"); err == nil {
			return false // never valid UTF-8
		}
		if _, err := m.AcceptString(tok); err != nil {
			panic("a clone disagrees with its original")
		}
	}
	return m.CanEnd()
}

const jsonGBNF = `# a JSON grammar in the style of llama.cpp's json.gbnf
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
`

const arithmeticGBNF = `root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
`

const listGBNF = `root ::= item+

# Excludes various line break characters
item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n"
`

const chessGBNF = `# a chess game in algebraic notation
root ::= (
    # "1. " then a move for white and one for black
    "1. " move " " move "\n"

    # then numbered moves
    ([1-9] [0-9]? ". " move " " move "\n")+
)

move ::= (pawn | nonpawn | castle) [+#]?

pawn ::= ([a-h] "x")? [a-h] [1-8] ("=" [NBKQ])?
nonpawn ::= [NBKQR] [a-h]? [1-8]? "x"? [a-h] [1-8]
castle ::= "O-O" "-O"?
`

var grammarTable = []struct {
	name   string
	src    string
	accept []string
	reject []string
}{
	{"literal", `root ::= "hello"`, []string{"hello"}, []string{"", "hell", "hello!", "Hello"}},
	{"alternation", `root ::= "a" | "bc" | "def"`, []string{"a", "bc", "def"}, []string{"", "b", "ab", "de", "defg"}},
	{"grouping", `root ::= ("a" | "b") "c"`, []string{"ac", "bc"}, []string{"c", "abc", "a"}},
	{"star", `root ::= "a"*`, []string{"", "a", "aaaa"}, []string{"b", "ab", "aab"}},
	{"plus of a literal", `root ::= "ab"+`, []string{"ab", "abab"}, []string{"", "a", "aba", "abb"}},
	{"optional", `root ::= "x" "y"? "z"`, []string{"xz", "xyz"}, []string{"x", "xyyz", "yz"}},
	{"exactly 3", `root ::= [0-9]{3}`, []string{"123", "000"}, []string{"12", "1234", "12a"}},
	{"at least 2", `root ::= "a"{2,}`, []string{"aa", "aaaaaaa"}, []string{"", "a", "aab"}},
	{"2 to 4", `root ::= "a"{2,4}`, []string{"aa", "aaa", "aaaa"}, []string{"a", "aaaaa"}},
	{"0 to 2", `root ::= "a"{0,2}`, []string{"", "a", "aa"}, []string{"aaa"}},
	{"up to 3", `root ::= "a"{,3} "b"`, []string{"b", "ab", "aaab"}, []string{"aaaab", "a"}},
	{"zero times", `root ::= "a"{0} "b"`, []string{"b"}, []string{"ab", ""}},
	{"bounds with blanks", `root ::= "a"{ 1 , 2 }`, []string{"a", "aa"}, []string{"", "aaa"}},
	{"repeated group", `root ::= ("ab" | "c"){2}`, []string{"abab", "abc", "cab", "cc"}, []string{"ab", "c", "abcab", "ccc"}},
	{"repeated rule", "root ::= d{2,3}\nd ::= [0-9]", []string{"12", "123"}, []string{"1", "1234"}},
	{"large bound", `root ::= "x"{100}`, []string{strings.Repeat("x", 100)}, []string{strings.Repeat("x", 99), strings.Repeat("x", 101)}},
	{"nested repetition", `root ::= ("a" "b"?)+`, []string{"a", "ab", "aab", "abab", "aaa"}, []string{"", "b", "abb"}},
	{"identifier class", `root ::= [a-zA-Z_] [a-zA-Z0-9_]*`, []string{"x", "_a1", "Hello_World9"}, []string{"", "1a", "a-b", "a b"}},
	{"negated class string", `root ::= "\"" [^"\\]* "\""`, []string{`""`, `"abc"`, `"日本"`}, []string{`"a"b"`, `"a\"`, `"abc`}},
	{"negated newline", `root ::= [^\n]+ "\n"`, []string{"abc\n", "é\n"}, []string{"\n", "a\nb\n", "abc"}},
	{"negated unicode", `root ::= [^a-z]+`, []string{"ABC", "日本", "A1!"}, []string{"", "aB", "Xz"}},
	{"dot", `root ::= "<" . . ">"`, []string{"<ab>", "<é😀>", "<\n\t>"}, []string{"<a>", "<abc>"}},
	{"dot star", `root ::= .*`, []string{"", "anything at all", "日本語 😀\n"}, []string{"\xff", "\xc0\x80", "\xed\xa0\x80"}},
	{"literal escapes", `root ::= "\t\n\r\\\"\x41\u00e9\U0001F600"`, []string{"\t\n\r\\\"Aé😀"}, []string{"\t\n\r\\\"A"}},
	{"class escapes", `root ::= [\x30-\x39\-\]\[]+`, []string{"0-]9", "[", "---"}, []string{"a", "0a"}},
	{"utf-8 literal", `root ::= "héllo wörld 日本 😀"`, []string{"héllo wörld 日本 😀"}, []string{"hello world 日本 😀", "héllo wörld 日本"}},
	{"cjk range", `root ::= [一-龯]+`, []string{"日本語", "中"}, []string{"", "abc", "日本語!"}},
	{"4-byte range", `root ::= [\U0001F600-\U0001F64F]+`, []string{"😀", "😀🙏"}, []string{"🚀", "😀a", ""}},
	{"mixed-width range", `root ::= [\x7e-\u0101]+`, []string{"~", "\u007f", "ÿ", "ā"}, []string{"}", "Ă"}},
	{"empty alternative in group", `root ::= ("x" | ) "y"`, []string{"y", "xy"}, []string{"x", "xxy"}},
	{"empty first alternative", `root ::= | "a"`, []string{"", "a"}, []string{"aa"}},
	{"empty literal", `root ::= "" "a" ""`, []string{"a"}, []string{"", "aa"}},
	{"empty group", `root ::= () "a" (){3}`, []string{"a"}, []string{""}},
	{"nested rules", "root ::= a\na ::= b \"1\"\nb ::= c \"2\"\nc ::= \"3\"", []string{"321"}, []string{"3", "123"}},
	{"balanced parentheses", "root ::= p\np ::= \"(\" p \")\" p | \"\"", []string{"", "()", "(())", "()()", "(()())"}, []string{"(", ")", "())", "(()"}},
	{"optional rules", "root ::= a? b?\na ::= \"a\"\nb ::= \"b\"", []string{"", "a", "b", "ab"}, []string{"ba", "aa"}},
	{"comma list", "root ::= item (\",\" item)*\nitem ::= [a-z]+", []string{"a", "ab,c,def"}, []string{"", "a,", ",a", "a,,b"}},
	{"ambiguous", `root ::= ("ab" | "a" "b")+ "a"* "a"*`, []string{"ab", "ababaa"}, []string{"a", "aba b"}},
	{"names with - and _", "root ::= my-rule_2\nmy-rule_2 ::= \"ok\"", []string{"ok"}, []string{"o"}},
	{"alternation on the next line", "root ::= \"a\"\n   | \"b\"\n   | \"c\"\n", []string{"a", "b", "c"}, []string{"d", "ab"}},
	{"CRLF", "root ::= a\r\na ::= \"x\" # comment\r\n", []string{"x"}, []string{"", "xx"}},
	{"comments everywhere", "# leading\n\nroot ::= ( # open\n  \"a\" # one\n  | \"b\" # two\n) # close\n# trailing\nunused ::= \"z\"\n", []string{"a", "b"}, []string{"z", "ab"}},
	{"date", `root ::= [0-9]{4} "-" [0-1] [0-9] "-" [0-3] [0-9]`, []string{"2026-12-08"}, []string{"2026-1-08", "2026-12-8", "26-12-08"}},
	{"deep groups", `root ::= ((((("a"))) | "b")) "c"`, []string{"ac", "bc"}, []string{"c"}},
	{"stacked operators", `root ::= "a"{2}?`, []string{"", "aa"}, []string{"a", "aaa"}},
	{"json", jsonGBNF,
		[]string{`{}`, `{"a": 1}`, `{"a":[1, 2.5e3, "x", true, null, {"b": {}}]}`, "{\n  \"k\": \"\\u00e9\\n\"\n}", `{"日本": "語"}`},
		[]string{`[]`, `{`, `{"a"}`, `{"a": 01}`, `{"a": tru}`, `{"a": "\x"}`, "{\"a\": \"\x01\"}", `{"a": 1,}`}},
	{"arithmetic", arithmeticGBNF,
		[]string{"x = 1\n", "(a +2) *b3 = 42\n", "1=1\n2=2\n"},
		[]string{"", "x = \n", "(1 = 1\n", "1 + = 2\n"}},
	{"list", listGBNF, []string{"- one\n", "- one\n- two 日本\n"}, []string{"", "-one\n", "- \n", "- a\u2028b\n"}},
	{"chess", chessGBNF, []string{"1. e4 e5\n2. Nf3 Nc6\n3. O-O exd4\n"}, []string{"1. e4 e5\n", "1. e9 e5\n2. d4 d5\n"}},
}

func TestGrammarTable(t *testing.T) {
	if len(grammarTable) < 40 {
		t.Fatalf("the table has %d grammars, want at least 40", len(grammarTable))
	}
	for _, tc := range grammarTable {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse(tc.src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, s := range tc.accept {
				ok, err := matches(g, s)
				if err != nil || !ok {
					t.Errorf("%q rejected (err %v), want accepted", s, err)
				}
				for _, size := range []int{1, 2, 3, 5} {
					if !matchesSplit(g, s, size) {
						t.Errorf("%q in %d-byte tokens rejected, want accepted", s, size)
					}
				}
			}
			for _, s := range tc.reject {
				ok, err := matches(g, s)
				if err != nil || ok {
					t.Errorf("%q accepted (err %v), want rejected", s, err)
				}
			}
		})
	}
}

var badGrammars = []struct {
	src       string
	line, col int
	msg       string // a part of the message
}{
	{"", 1, 1, "no rule named root"},
	{"rot ::= \"a\"", 1, 1, "no rule named root"},
	{"root ::= foo", 1, 10, `undefined rule "foo"`},
	{"root ::= a\na ::= \"x\" b", 2, 11, `undefined rule "b"`},
	{"root ::= \"abc", 1, 10, "unterminated string"},
	{"root ::= \"abc\ndef\"", 1, 10, "unterminated string"},
	{"root ::= [abc", 1, 10, "unterminated character class"},
	{"root ::= [a-\n", 1, 10, "unterminated character class"},
	{"root ::= []", 1, 10, "empty character class"},
	{"root ::= [^\\x00-\\U0010FFFF]", 1, 10, "matches no character"},
	{"root ::= [z-a]", 1, 11, "reversed"},
	{"root ::= \"a\"{3,2}", 1, 13, "maximum 2 is less than its minimum 3"},
	{"root ::= \"a\"{2000}", 1, 14, "bound 2000 exceeds the limit 1000"},
	{"root ::= \"a\"{1,99999999999999999999}", 1, 16, "exceeds the limit 1000"},
	{"root ::= \"a\"{x}", 1, 14, "expected a number"},
	{"root ::= \"a\"{2", 1, 15, "expected , or }"},
	{"root ::= \"a\"{2,3", 1, 17, "expected } to close"},
	{"root ::= \"a\"{,}", 1, 13, "no number"},
	{"root ::= (\"a\"", 1, 14, "expected ) to close the group opened at 1:10"},
	{"root ::= \"a\")", 1, 13, "expected the end of the line"},
	{"root ::= \"a\" @", 1, 14, "found '@'"},
	{"root = \"a\"", 1, 6, "expected ::="},
	{"::= \"a\"", 1, 1, "expected a rule name"},
	{"root ::= \"\\q\"", 1, 11, `unknown escape \q`},
	{"root ::= \"\\x4\"", 1, 11, "needs 2 hex digits, found 1"},
	{"root ::= \"\\uD800\"", 1, 11, "not a Unicode scalar value"},
	{"root ::= \"\\U00110000\"", 1, 11, "not a Unicode scalar value"},
	{"root ::= \"\\", 1, 11, "unfinished escape"},
	{"root ::= \"\xff\"", 1, 11, "invalid UTF-8"},
	{"root ::= \"a\"\nroot ::= \"b\"", 2, 1, "defined twice (first at 1:1)"},
	{"root ::= root \"a\" | \"b\"", 1, 1, "left recursion: root -> root"},
	{"root ::= a\na ::= b \"x\"\nb ::= a \"y\" | \"z\"", 2, 1, "left recursion: a -> b -> a"},
	{"root ::= e \"!\"\ne ::= n e \"x\" | \"y\"\nn ::= \"n\" | \"\"", 2, 1, "left recursion: e -> e"},
	{"root ::= (\"a\"?)*", 1, 16, "repetition of an item that can match the empty string"},
	{"root ::= (\"a\" | \"\")+", 1, 20, "repetition of an item that can match the empty string"},
	{"# ok\n\nroot ::= \"a\"\n  x ::= \"b\" |\n  \"c\" ::=", 5, 7, "expected the end of the line"},
	{"root ::= " + strings.Repeat("(", 100) + "\"a\"" + strings.Repeat(")", 100), 1, 74, "nested more than 64 deep"},
}

func TestBadGrammars(t *testing.T) {
	for _, tc := range badGrammars {
		_, err := Parse(tc.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a *SyntaxError", tc.src, err)
			continue
		}
		if se.Line != tc.line || se.Col != tc.col || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("%q: %v, want %d:%d and %q", tc.src, err, tc.line, tc.col, tc.msg)
		}
	}
}

func TestLeftRecursionChainStartsAtANamedRule(t *testing.T) {
	_, err := Parse("root ::= x\nx ::= (\"\" | y) \"a\"\ny ::= x \"b\"")
	if err == nil || !strings.Contains(err.Error(), "left recursion: x -> (group at 2:7) -> y -> x") {
		t.Fatalf("error %v", err)
	}
}
