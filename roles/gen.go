package roles

import (
	"context"
	"flag"
	"fmt"
	"io"

	"fastfeed/fast/fastgen"
)

// Gen is `fastfeed gen -t TEMPLATES.xml -pkg NAME -o FILE.go`: a generated Go codec for
// a template file (fast/fastgen).
func Gen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	templates := fs.String("t", "", "FAST template XML `file` (required)")
	pkg := fs.String("pkg", "", "Go package `name` of the generated code (required)")
	out := fs.String("o", "", "output Go `file` (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastfeed gen -t TEMPLATES.xml -pkg NAME -o FILE.go")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *templates == "" || *pkg == "" || *out == "" || fs.NArg() > 0 {
		return &UsageError{"-t TEMPLATES.xml, -pkg NAME and -o FILE.go are required, and nothing else"}
	}
	if err := fastgen.GenerateFile(*templates, *pkg, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fastfeed gen: %s -> %s (package %s)\n", *templates, *out, *pkg)
	return nil
}
