package grammar_test

import (
	"fmt"
	"math/bits"

	"github.com/gollm/gollm/grammar"
)

func ExampleParse() {
	g, err := grammar.Parse(`
root   ::= "Answer: " (yes | no) "\n"
yes    ::= "yes" | "y"
no     ::= [nN] "o"?`)
	if err != nil {
		panic(err)
	}
	m := g.NewMatcher()
	for _, piece := range []string{"Ans", "wer: ", "N"} { // tokens, say
		if _, err := m.AcceptString(piece); err != nil {
			fmt.Println(piece, err)
		}
	}
	fmt.Println("may end after N:", m.CanEnd())
	fmt.Println("x allowed:", m.Allows('x'), " o allowed:", m.Allows('o'))
	m.AcceptString("o\n")
	fmt.Println("may end:", m.CanEnd(), " nothing more:", m.Done())

	_, err = grammar.Parse("root ::= item+\nitem ::= [a-z")
	fmt.Println(err)
	// Output:
	// may end after N: false
	// x allowed: false  o allowed: true
	// may end: true  nothing more: true
	// grammar:2:10: unterminated character class
}

func ExampleJSONSchema() {
	g, err := grammar.JSONSchema([]byte(`{
		"type": "object",
		"properties": {
			"city": {"type": "string", "maxLength": 20},
			"unit": {"enum": ["C", "F"]}
		},
		"required": ["city"]
	}`))
	if err != nil {
		panic(err)
	}
	for _, doc := range []string{`{"city": "Oslo", "unit": "C"}`, `{"unit": "C"}`, `{"city": "Oslo", "unit": "K"}`} {
		m := g.NewMatcher()
		_, err := m.AcceptString(doc)
		fmt.Println(doc, err == nil && m.CanEnd())
	}
	_, err = grammar.FromJSONSchema([]byte(`{"type": "string", "format": "email"}`))
	fmt.Println(err)
	// Output:
	// {"city": "Oslo", "unit": "C"} true
	// {"unit": "C"} false
	// {"city": "Oslo", "unit": "K"} false
	// schema at /: "format": "email" is not supported (date, time, date-time, uuid are)
}

func ExampleMasker() {
	g, _ := grammar.Parse(`root ::= "[" [0-9]+ ("," [0-9]+)* "]"`)
	vocab := []string{"[", "[1", "12", ",", ",3", "]", "a", "\"", ""}
	pieces := make([][]byte, len(vocab))
	for i, v := range vocab {
		pieces[i] = []byte(v)
	}
	k := grammar.NewMasker(grammar.NewTokenTrie(pieces))
	mask := make([]uint64, 1)

	m := g.NewMatcher()
	m.AcceptString("[7")
	k.FillMask(m, mask)
	for w := mask[0]; w != 0; w &= w - 1 {
		fmt.Printf("%q ", vocab[bits.TrailingZeros64(w)])
	}
	fmt.Println()
	// Output:
	// "12" "," ",3" "]"
}
