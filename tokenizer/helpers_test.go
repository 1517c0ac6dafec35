package tokenizer

import (
	"fmt"
	"reflect"
	"testing"
)

// equal fails the test when got != want (deep equality), naming what.
func equal(tb testing.TB, want, got any, what string, args ...any) {
	tb.Helper()
	if !reflect.DeepEqual(want, got) {
		tb.Fatalf("%s:\n got  %v\n want %v", fmt.Sprintf(what, args...), got, want)
	}
}

// check fails the test when err is not nil.
func check(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
