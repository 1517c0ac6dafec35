// Command amxgen writes kernels/amx_amd64.s (see package
// kernels/internal/amxgen). Run it through go generate:
//
//	go generate ./kernels
//
// or by hand, from the kernels directory:
//
//	go run ./internal/amxgen/cmd/amxgen -o amx_amd64.s
//
// Without -o it writes to standard output.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gollm/gollm/kernels/internal/amxgen"
)

func main() {
	out := flag.String("o", "", "output file (default: standard output)")
	flag.Parse()
	src := amxgen.Source()
	var err error
	if *out == "" {
		_, err = os.Stdout.Write(src)
	} else {
		err = os.WriteFile(*out, src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "amxgen:", err)
		os.Exit(1)
	}
}
