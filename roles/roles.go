// Package roles is fastfeed's subcommands, one file per role (pub, feed, replay, record,
// oms, decode, bench, demo, soak): each role's options register its flags on a
// flag.FlagSet and merge its configuration file under them, the way nats-server's main
// calls server.ConfigureOptions, and its Run function wires the packages that do the work.
// cmd/fastfeed only dispatches to them.
//
// What several roles share is written once: [Common] (--log-level, --templates),
// [Network] (--iface, --group-base, --group-size, --single-group, --port,
// --definitions-group and line B's groups) and the --config merge (config.go): a
// configuration file is a JSON object whose keys are the role's flag names, e.g.
//
//	{"topics": ["SBER", "GAZP"], "group-base": "239.1.0.1", "gap-wait": "5ms"}
//
// so a flag and its config key cannot disagree. Precedence: a flag given on the command
// line, else the config file's key, else the flag's default. (pub's --config is the
// publisher's own file format, publisher.LoadConfig, with the same precedence.)
package roles

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Func is a role's entry point: it parses args, runs the role until it is done or ctx
// ends, and returns a *UsageError for a bad command line and flag.ErrHelp for -h.
type Func func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// UsageError is a bad command line: the caller prints it and exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// FlagError is a command line the flag parser refused: the message says what was
// expected (for a bad value, what the flag takes), and Usage is the role's usage, for the
// caller to print after it.
type FlagError struct {
	*UsageError
	Usage string
}

func (e *FlagError) Unwrap() error { return e.UsageError }

// HelpError is returned for -h, -help or --help: Usage is the role's usage and flags, which
// the caller prints on standard output (help that was asked for is output, not an error).
// It matches flag.ErrHelp with errors.Is.
type HelpError struct{ Usage string }

func (e *HelpError) Error() string        { return flag.ErrHelp.Error() }
func (e *HelpError) Is(target error) bool { return target == flag.ErrHelp }

func usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// cmdline is a role's parsed command line.
type cmdline struct {
	fs  *flag.FlagSet
	pos []string        // positional arguments
	set map[string]bool // flags given, on the command line or in the config file
}

// newFlagSet returns a flag set writing its messages to stderr, whose usage prints the
// lines given and then the flags, spelt --flag.
func newFlagSet(name string, stderr io.Writer, usage ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		for _, l := range usage {
			fmt.Fprintln(fs.Output(), l)
		}
		printDefaults(fs)
	}
	return fs
}

// parseFlags runs fs.Parse with the flag package's own messages held back: -h gives a
// *HelpError holding the usage, a refused command line a *FlagError saying what the
// flag wants, the usage after it.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	defer fs.SetOutput(out)
	err := fs.Parse(args)
	if err == nil {
		return nil
	}
	buf.Reset()
	fs.Usage()
	if errors.Is(err, flag.ErrHelp) {
		return &HelpError{Usage: buf.String()}
	}
	return &FlagError{UsageError: &UsageError{explainFlagError(fs, err)}, Usage: buf.String()}
}

var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	missingValue  = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	badValue      = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]*): (.*)$`)
)

// explainFlagError rewrites the flag package's error: the flag spelt --flag, and for a
// bad or missing value what the flag takes ("a duration such as 5s").
func explainFlagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown flag --%s", m[1])
	}
	if m := missingValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s needs a value: %s", m[1], wants(fs.Lookup(m[1])))
	}
	if m := badValue.FindStringSubmatch(msg); m != nil {
		why := ""
		if m[3] != "parse error" && m[3] != "value out of range" {
			why = " (" + m[3] + ")"
		} else if m[3] == "value out of range" {
			why = " (out of range)"
		}
		return fmt.Sprintf("--%s %q: want %s%s", m[2], m[1], wants(fs.Lookup(m[2])), why)
	}
	return msg
}

// wants says what a flag's value must be, from its type.
func wants(f *flag.Flag) string {
	if f == nil {
		return "a value"
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "a value"
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a duration such as 5s, 250ms or 1m30s"
	case bool:
		return "true or false"
	case int, int64:
		return "a whole number"
	case uint, uint64:
		return "a whole number, 0 or more"
	case float64:
		return "a number such as 0.5"
	}
	name, _ := flag.UnquoteUsage(f)
	if name == "" {
		name = "value"
	}
	return "a " + name
}

// printDefaults is flag.PrintDefaults with the flags spelt --flag, as the README and the
// messages spell them.
func printDefaults(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		var b strings.Builder
		fmt.Fprintf(&b, "  --%s", f.Name)
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			b.WriteString(" " + name)
		}
		b.WriteString("\n    \t")
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "0s" {
			if g, ok := f.Value.(flag.Getter); ok && isString(g.Get()) {
				fmt.Fprintf(&b, " (default %q)", d)
			} else {
				fmt.Fprintf(&b, " (default %v)", d)
			}
		}
		fmt.Fprintln(fs.Output(), b.String())
	})
}

// parseOpts says how Parse treats a command line.
type parseOpts struct {
	positional int    // positional arguments accepted (anywhere among the flags); -1: any number
	config     string // the flag naming a config file to merge ("" : none)
}

// parse parses args with fs: flags, positional arguments (up to po.positional, before or
// after the flags), then the config file named by the po.config flag, if given, merged
// under the flags given on the command line. A bad command line is a *UsageError; -h
// returns flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string, po parseOpts) (*cmdline, error) {
	c := &cmdline{fs: fs, set: map[string]bool{}}
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if po.positional == 0 {
			return nil, usagef("unexpected argument %q", args[0])
		}
		if args[0] == "-" || args[0][0] != '-' {
			c.pos = append(c.pos, args[0])
			args = args[1:]
			continue
		}
		c.pos = append(c.pos, args...) // "--" ends the flags
		break
	}
	if po.positional > 0 && len(c.pos) > po.positional {
		return nil, usagef("unexpected argument %q", c.pos[po.positional])
	}
	fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })
	if po.config != "" && c.set[po.config] {
		keys, err := mergeConfig(fs, fs.Lookup(po.config).Value.String(), c.set)
		if err != nil {
			return nil, &UsageError{err.Error()}
		}
		for _, k := range keys {
			c.set[k] = true
		}
	}
	return c, nil
}

func isString(v any) bool { _, ok := v.(string); return ok }
