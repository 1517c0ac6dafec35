package main

import (
	"fmt"

	"github.com/gollm/gollm/grammar"
	"github.com/spf13/pflag"
)

// constraintFlags are the structured-output flags of run and chat:
// --json-schema FILE, --grammar FILE (GBNF) and --json-object (any JSON
// object; --json was taken by run's report). At most one; the files go
// through readInput's size cap, then the grammar package's own limits
// (source size, rules, nesting, repetition bounds), whose errors name the
// line and column or the schema's path and keyword. Every error is a bad
// flag (exit 2).
type constraintFlags struct {
	schemaFile, grammarFile string
	object                  bool
	grammar                 *grammar.Grammar // read's result: nil without a flag
}

func (c *constraintFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.schemaFile, "json-schema", "", "constrain answers to JSON valid against the JSON Schema in `FILE`")
	fs.StringVar(&c.grammarFile, "grammar", "", "constrain answers to the GBNF grammar in `FILE`")
	fs.BoolVar(&c.object, "json-object", false, "constrain answers to any JSON object")
}

// read checks the flags and parses the grammar into c.grammar.
func (c *constraintFlags) read() error {
	n := 0
	for _, set := range []bool{c.schemaFile != "", c.grammarFile != "", c.object} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w: --json-schema, --grammar and --json-object exclude each other", errUsage)
	}
	var err error
	switch {
	case c.object:
		c.grammar, err = grammar.Parse(grammar.JSONObject)
	case c.schemaFile != "":
		var data []byte
		if data, err = readInput("json-schema", c.schemaFile); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		if c.grammar, err = grammar.JSONSchema(data); err != nil {
			return fmt.Errorf("%w: --json-schema %s: %w", errUsage, c.schemaFile, err)
		}
	case c.grammarFile != "":
		var data []byte
		if data, err = readInput("grammar", c.grammarFile); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		if c.grammar, err = grammar.Parse(string(data)); err != nil {
			return fmt.Errorf("%w: --grammar %s: %w", errUsage, c.grammarFile, err)
		}
	}
	return err
}
