// Package grammar constrains text to a context-free grammar, one byte at a
// time, for grammar-constrained sampling.
//
// The pieces, in the order a sampler uses them:
//
//	g, err := grammar.Parse(gbnf)                // or grammar.JSONSchema(schema)
//	trie := grammar.NewTokenTrie(pieces)         // once per vocabulary
//	k := grammar.NewMasker(trie)                 // one per goroutine
//	m := g.NewMatcher()                          // one per sequence
//	k.FillMask(m, mask)                          // before sampling: the tokens allowed
//	m.Accept(pieces[token])                      // after: advance
//	m.CanEnd()                                   // whether end of generation is allowed
//
// The package imports only the standard library.
//
// # The format
//
// Grammars are written in GBNF, llama.cpp's grammar format, so existing
// grammars work unchanged:
//
//	# comments run to the end of the line
//	root   ::= "Answer: " (yes | no) "\n"   # the language is the rule root
//	yes    ::= "yes" | "y"
//	no     ::= [nN] "o"?
//
// A rule is `name ::= alternatives`; names use letters, digits, - and _.
// An alternative is a sequence of items, and an item is a literal "…", a
// character class […] or [^…] (ranges a-z; ^ negates), . (any character),
// a rule name, or a group ( … ), followed by any number of the operators
// * + ? {m} {m,} {m,n} {,n}. A repeated literal repeats as a whole
// ("ab"* is ab, abab, …). Literals and classes take the escapes \n \t \r
// \\ \" \' \[ \] \- \^ \/, \xHH, \uHHHH and \UHHHHHHHH; \xHH is the code
// point U+00HH, not a raw byte, as in llama.cpp. A rule ends at the end of
// its line, except inside a group, after | or ::=, or where the next line
// starts with | (llama.cpp refuses that last form). An empty alternative
// is written as nothing: ( "a" | ), or as "".
//
// Beyond llama.cpp: _ in names, {,n}, and a next line that starts with |.
// Stricter: a rule defined twice is an error (llama.cpp does not refuse
// it). Missing: llama.cpp's newer token
// references (<think>, <[1234]>), which constrain tokens, not text.
//
// Terminals are Unicode code points: every class is a set of code points,
// and the matcher accepts only valid UTF-8 (no overlong forms, no
// surrogates), whatever the grammar.
//
// Every grammar is refused with a *SyntaxError naming the line and column
// (in characters) when it is malformed, names an undefined rule, defines a
// rule twice, has no rule root, is left-recursive, or exceeds Limits: the
// source size, the number of rules, the nesting of groups, repetition
// bounds (1000 by default) and the size once repetitions are written out.
//
// # How matching works
//
// A grammar compiles to a flat array of elements. Each alternative of each
// rule is a run of elements closed by an End; an element reads one
// character from a class, or calls a rule. A position is an index into the
// array. Repetitions become plain rules: x* is S ::= x S | (empty), x{2,3}
// is x x O with O ::= x | (empty).
//
// The matcher is a pushdown automaton in the manner of llama.cpp's grammar
// stacks. Its state is a set of stacks. The top frame of each stack is at
// a class element, the next character it wants; each frame below is the
// position to go on from once the rule above it ends. Reading a character
// c keeps the stacks whose top class contains c, moves each one past that
// element, and expands the result:
//
//   - at a class element, the stack is done: it waits for the next
//     character;
//   - at a rule call, the stack forks, one per alternative of the rule,
//     each with the return position (the element after the call) pushed
//     below the alternative's first element;
//   - at an End, the frame is popped and expansion goes on at the return
//     position below. An End with nothing below means the whole input may
//     end here.
//
// A worked example. Take the grammar
//
//	root ::= "[" items? "]"
//	items ::= num ("," num)*
//	num ::= [0-9]+
//
// compiled to these elements (position, then element; | separates a
// rule's alternatives; rules are laid out in the order they are first
// mentioned, the rules that stand for items?, ("," num)* and [0-9]+ as
// they are made):
//
//	root:  0 '['        1 call O    2 ']'   3 End
//	items: 4 call num   5 call S    6 End
//	O:     7 call items 8 End     | 9 End                 items?
//	num:  10 [0-9]     11 call N   12 End                 [0-9]+
//	G:    13 ','       14 call num 15 End                 "," num
//	S:    16 call G    17 call S   18 End | 19 End        ("," num)*
//	N:    20 [0-9]     21 call N   22 End | 23 End        [0-9]*
//
// Write a stack bottom to top as [2 5 10]. The start state is the
// expansion of root: one stack, [0], wanting '['.
//
// Reading '[' moves that stack to position 1, a call of O that is not
// last in its alternative, so the return position 2 is pushed. O's first
// alternative calls items (a tail call: position 8 is an End), which
// calls num (pushing the return position 5), which wants a digit at 10:
// the stack [2 5 10]. O's second alternative is an End at once: it pops
// back to 2, which wants ']': the stack [2]. After "[" the state is
//
//	[2 5 10] (a digit)    [2] (']')
//
// Reading '7' drops [2] and moves [2 5 10] to 11, a tail call of N. N's
// first alternative wants another digit: [2 5 20]. Its second ends, and
// so does num (12), popping to 5: a tail call of S, whose first
// alternative calls G (pushing 17) and wants ',' at 13: [2 17 13]; S's
// second alternative ends, so do items and O, popping to 2: [2]. After
// "[7" the state is
//
//	[2 5 20] (a digit)    [2 17 13] (',')    [2] (']')
//
// Reading ']' keeps [2] alone, moves it to 3, an End with nothing below:
// the state has no stacks left and may end. "[7]" is a sentence.
//
// Two refinements keep this cheap. A call that is the last element of its
// alternative is a tail call: it pushes no return frame, because the
// frame would only be popped at once. So right recursion and repetitions,
// which the compiler writes as tail calls, run in constant stack depth
// (a list of a million items is two frames deep). And stacks are
// immutable linked lists sharing their lower frames, hashed as they are
// built, so that a state is a slice of pointers to tops: Clone copies a
// header in O(1), and duplicate stacks (two parses that reach the same
// configuration) are merged by hash and a walk that stops at the first
// shared frame.
//
// An ambiguous grammar can keep many stacks alive; Limits.MaxStacks
// bounds them (a *LimitError, not a blow-up), and Limits.MaxDepth bounds
// the depth of one stack. Left recursion (a rule reaching itself before
// reading a character, directly, through other rules, or through rules
// that may match the empty string) would make expansion loop forever, so
// the compiler refuses it, naming the chain of rules: a -> b -> a.
//
// # Bytes
//
// Byte-level BPE tokens may split a UTF-8 sequence, so the matcher reads
// bytes. A byte that starts or continues a multi-byte sequence is held in
// the state until the character is complete; it is accepted only if the
// range of code points that the bytes so far can still become overlaps
// the class of some stack top. Thus every accepted byte keeps the input a
// prefix of some sentence (provided every rule can finish: a rule that
// only ever calls itself again is not detected), and CanEnd is false
// while a character is half read.
//
// # JSON Schema
//
// FromJSONSchema writes the GBNF of a JSON Schema (schema.go lists the
// subset, and where the grammar is narrower than the schema); JSONObject
// is the GBNF of any JSON object. Every sentence of the grammar validates
// against the schema: the tests check random sentences with an
// independent validator.
//
// # Token masks
//
// A Masker walks a TokenTrie, the vocabulary's byte strings in a trie,
// with a matcher's state, so that shared prefixes are advanced once and a
// refused byte cuts off its whole subtree (mask.go explains the layout and
// the caches). Inside strings, where nearly every token fits, the
// vocabulary is sorted once per class of characters, and a mask walks only
// the tokens that leave the class (mask_class.go). A token that ends
// inside a UTF-8 character is allowed when the character may still become
// one the grammar allows; the state keeps the partial character, and so
// does the matcher after Accept.
package grammar
