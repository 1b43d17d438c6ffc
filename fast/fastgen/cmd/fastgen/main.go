// Command fastgen is `fastfeed gen` without the rest of fastfeed, for //go:generate lines:
// it builds even when the generated code it replaces does not.
//
//	fastgen -t TEMPLATES.xml -pkg NAME -o FILE.go
package main

import (
	"flag"
	"fmt"
	"os"

	"fastfeed/fast/fastgen"
)

func main() {
	t := flag.String("t", "", "FAST template XML `file`")
	pkg := flag.String("pkg", "", "Go package `name`")
	o := flag.String("o", "", "output Go `file`")
	flag.Parse()
	if *t == "" || *pkg == "" || *o == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: fastgen -t TEMPLATES.xml -pkg NAME -o FILE.go")
		os.Exit(2)
	}
	if err := fastgen.GenerateFile(*t, *pkg, *o); err != nil {
		fmt.Fprintln(os.Stderr, "fastgen:", err)
		os.Exit(1)
	}
}
