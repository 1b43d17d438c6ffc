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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Func is a role's entry point: it parses args, runs the role until it is done or ctx
// ends, and returns a *UsageError for a bad command line and flag.ErrHelp for -h.
type Func func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// UsageError is a bad command line: the caller prints it with the usage and exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// cmdline is a role's parsed command line.
type cmdline struct {
	fs  *flag.FlagSet
	pos []string        // positional arguments
	set map[string]bool // flags given, on the command line or in the config file
}

// newFlagSet returns a flag set writing its messages to stderr, whose usage prints the
// lines given and then the flags.
func newFlagSet(name string, stderr io.Writer, usage ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		for _, l := range usage {
			fmt.Fprintln(stderr, l)
		}
		fs.PrintDefaults()
	}
	return fs
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
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &UsageError{err.Error()}
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
