package main

import (
	"context"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestHelpAndVersion: help that is asked for goes to stdout, exit 0, with the flags spelt
// --flag; "fastfeed help CMD" is CMD's help; "fastfeed version" names the module version,
// the revision and the Go version. A bare "fastfeed" is a usage error on stderr.
func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		out, errOut, code := runCLI(t, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "commands:") || !strings.Contains(out, "version") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	singleDash := regexp.MustCompile(`(?m)^  -[a-z]`)
	for _, args := range [][]string{{"help", "feed"}, {"feed", "-h"}, {"feed", "--help"}, {"help", "pub"}, {"decode", "-help"}, {"help", "bench"}} {
		out, errOut, code := runCLI(t, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "usage: fastfeed "+strings.TrimPrefix(args[len(args)-1], "-")) && !strings.Contains(out, "usage: fastfeed "+args[0]) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			continue
		}
		if !strings.Contains(out, "\n  --") || singleDash.MatchString(out) {
			t.Errorf("%v: flags not spelt --flag:\n%s", args, out)
		}
	}
	if out, _, code := runCLI(t, "help", "feed"); !strings.Contains(out, "  --topics symbols") || !strings.Contains(out, "  --http address") || code != 0 {
		t.Errorf("help feed:\n%s", out)
	}
	out, errOut, code := runCLI(t, "version")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "fastfeed ") || !strings.Contains(out, "\nrevision ") ||
		!strings.Contains(out, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version: exit %d, %q, %q", code, out, errOut)
	}
	if out, errOut, code := runCLI(t); code != 2 || out != "" || !strings.Contains(errOut, "commands:") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "help", "nosuch"); code != 2 || !strings.Contains(errOut, `unknown command "nosuch"`) {
		t.Errorf("help nosuch: exit %d, %q", code, errOut)
	}
}

// TestBadValueSaysWhatIsWanted: a value the flag parser refuses is reported first, saying
// what the flag takes, and the usage comes after it.
func TestBadValueSaysWhatIsWanted(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"feed", "--topics", "SBER", "--duration", "5"}, `fastfeed feed: --duration "5": want a duration such as 5s`},
		{[]string{"pub", "--instruments", "many"}, `fastfeed pub: --instruments "many": want a whole number`},
		{[]string{"pub", "--rate", "fast"}, `fastfeed pub: --rate "fast": want a number such as 0.5`},
		{[]string{"feed", "--all=maybe"}, `fastfeed feed: --all "maybe": want true or false`},
		{[]string{"feed", "--port", "-1"}, `fastfeed feed: --port "-1": want a whole number, 0 or more`},
		{[]string{"feed", "--topics"}, `fastfeed feed: --topics needs a value: a symbols`},
		{[]string{"demo", "--duration"}, `fastfeed demo: --duration needs a value: a duration such as 5s`},
		{[]string{"feed", "--nosuch"}, `fastfeed feed: unknown flag --nosuch`},
		{[]string{"bench", "--rates"}, `fastfeed bench: --rates needs a value`},
	} {
		out, errOut, code := runCLI(t, c.args...)
		usage := strings.Index(errOut, "usage: fastfeed "+c.args[0])
		if code != 2 || out != "" || !strings.HasPrefix(errOut, c.says) || usage < 0 {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant it to start with %q and show the usage after", c.args, code, errOut, c.says)
		}
	}
	// A usage error found after parsing points to the help instead of repeating it.
	if _, errOut, code := runCLI(t, "feed", "--topics", "A", "--all"); code != 2 ||
		!strings.Contains(errOut, "give exactly one of --topics A,B and --all") || !strings.Contains(errOut, "fastfeed help feed") {
		t.Errorf("feed --topics A --all: exit %d, %q", code, errOut)
	}
}

// TestDecodeWithoutTemplates: decode takes the templates every command takes (compiled in
// here: the test runs outside the repository root); when the default stream framing fails
// at the first bytes, the error suggests --framing seq32.
func TestDecodeWithoutTemplates(t *testing.T) {
	const sample = "../../fixtures/sample.seq32"
	want, _, code := runCLI(t, "decode", "-t", templatesPath, "--framing", "seq32", sample)
	if code != 0 || want == "" {
		t.Fatalf("decode -t: exit %d", code)
	}
	got, errOut, code := runCLI(t, "decode", "--framing", "seq32", sample)
	if code != 0 || got != want {
		t.Errorf("decode without -t: exit %d, %s\n%s\nwant\n%s", code, errOut, got, want)
	}
	_, errOut, code = runCLI(t, "decode", sample)
	if code != 1 || !strings.Contains(errOut, "try --framing seq32") {
		t.Errorf("decode of seq32 data as a stream: exit %d, %q", code, errOut)
	}
	// A stream that decodes, then breaks, is not taken for the wrong framing.
	_, errOut, _ = runCLI(t, "decode", "--framing", "stream", sample)
	if strings.Contains(errOut, "try --framing") {
		t.Errorf("--framing given explicitly, yet a hint: %q", errOut)
	}
}

// TestUnknownTopicFails: a feed asked for a topic that no definition and no datagram
// names ends with a warning naming it and exit 1, its other books still right.
func TestUnknownTopicFails(t *testing.T) {
	bin := fastfeedBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := start(t, ctx, bin, "feed", "--topics", "SBER,NOSUCH", "--duration", "3s")
	h.waitFor(t, "feed handler started")
	p := start(t, ctx, bin, "pub", "--instruments", "2", "--rate", "2000", "--count", "1000")
	p.wait(t, "pub")
	var err error
	select {
	case err = <-h.done:
	case <-ctx.Done():
		t.Fatal("feed did not stop")
	}
	log := h.stderr.String()
	if err == nil || !strings.Contains(log, "topics never heard of") || !strings.Contains(log, "topics=NOSUCH") ||
		!strings.Contains(log, "1 of 2 topics never heard of (no security definition, no data): NOSUCH") {
		t.Errorf("feed: %v\n%s", err, log)
	}
}
