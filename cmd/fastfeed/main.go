// Command fastfeed is fastfeed's single binary: the publisher, the feed handler and the
// tools around them, one subcommand per job. Run "fastfeed help" for the list.
//
// This file only dispatches: each subcommand's flags, config file and wiring are in
// package roles, the fault scenarios in package scenario, the demo in package demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"syscall"

	"fastfeed/roles"
)

// command is one subcommand.
type command struct {
	summary string
	run     roles.Func
}

func commands() map[string]command {
	return map[string]command{
		"decode":   {"decode FAST messages to JSON lines", roles.Decode},
		"gen":      {"generate a Go FAST codec for a template file", roles.Gen},
		"pub":      {"simulate order books and publish them on multicast (FAST)", roles.Pub},
		"feed":     {"feed handler: join groups, recover gaps, build books", roles.Feed},
		"demo":     {"publisher and handler on loopback, live books, recovery and latency", roles.Demo},
		"oms":      {"reference OMS client: subscribe to a handler's FIX service (or NATS), print books", roles.OMS},
		"gateway":  {"OMS FIX service fed from NATS (scale-out of feed --serve-fix)", roles.Gateway},
		"bench":    {"benchmark suite: microbenchmarks, end to end vs a bare receiver, REPORT.md and plot", roles.Bench},
		"ingest":   {"MOEX ASTS FAST ingest: a market's feeds, live or from a capture, into books and trades", roles.Ingest},
		"moex-sim": {"emulate a MOEX ASTS market's feeds (A and B, snapshots, historical replay) from the simulator, with loss injection", roles.MoexSim},
		"replay":   {"replay a pcap/pcapng capture into a handler or onto multicast", roles.Replay},
		"record":   {"record multicast groups to a pcapng/pcap capture", roles.Record},
		"soak":     {"run the fault scenarios round after round; books must equal the ground truth", roles.Soak},
		"passwd":   {"print the argon2id hash of a password read from standard input, for a config's users", roles.Passwd},
	}
}

func main() {
	// A closed terminal or a "reload" (kill -HUP) must not kill a publisher or a handler
	// that is serving: SIGHUP is ignored (the logs go to stderr, there is nothing to
	// reopen). SIGINT and SIGTERM stop gracefully, writing --stats-out and --dump-books.
	signal.Ignore(syscall.SIGHUP)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status: 0, 1 for a failure, 2
// for a bad command line.
func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		usage(stderr, cmds)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout, cmds) // help asked for is output
		return 0
	case "help":
		return help(args[1:], stdout, stderr, cmds)
	case "version", "--version":
		version(stdout)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "fastfeed: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args[1:], stdout, stderr)
	var ue *roles.UsageError
	var he *roles.HelpError
	var fe *roles.FlagError
	switch {
	case errors.As(err, &he):
		fmt.Fprint(stdout, he.Usage)
		return 0
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		// What was wrong first, then the usage.
		fmt.Fprintf(stderr, "fastfeed %s: %v\n", args[0], err)
		if errors.As(err, &fe) && fe.Usage != "" {
			fmt.Fprintf(stderr, "\n%s", fe.Usage)
		} else {
			fmt.Fprintf(stderr, "Run 'fastfeed help %s' for its flags.\n", args[0])
		}
		return 2
	}
	fmt.Fprintf(stderr, "fastfeed %s: %v\n", args[0], err)
	return 1
}

// help is "fastfeed help [CMD]": the list of commands, or CMD's flags, on stdout.
func help(args []string, stdout, stderr io.Writer, cmds map[string]command) int {
	if len(args) == 0 {
		usage(stdout, cmds)
		return 0
	}
	if args[0] == "version" {
		fmt.Fprintln(stdout, "usage: fastfeed version\n\nPrints the module version, the VCS revision it was built from and the Go version.")
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "fastfeed help: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	err := cmd.run(context.Background(), []string{"-h"}, stdout, stderr)
	var he *roles.HelpError
	switch {
	case errors.As(err, &he):
		fmt.Fprint(stdout, he.Usage)
	case err != nil && !errors.Is(err, flag.ErrHelp):
		return 1
	}
	return 0
}

// version prints what the binary was built from: the module version, the VCS revision
// (when the build recorded it: go build without -buildvcs=false, in a git checkout) and
// the Go version, OS and architecture.
func version(w io.Writer) {
	mod, rev, dirty := "(unknown)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		mod = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	switch {
	case rev == "":
		rev = "unknown (built without VCS information)"
	case dirty:
		rev += " (modified)"
	}
	fmt.Fprintf(w, "fastfeed %s\nrevision %s\n%s %s/%s\n", mod, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: fastfeed <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "the commands, or a command's flags: fastfeed help <command>")
	fmt.Fprintf(w, "  %-8s %s\n", "version", "module version, VCS revision and Go version")
	fmt.Fprintln(w, "\nRun 'fastfeed help <command>' or 'fastfeed <command> -h' for a command's flags.")
}
