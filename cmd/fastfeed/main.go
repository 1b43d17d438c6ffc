// Command fastfeed is fastfeed's single binary: the publisher, the feed handler and the
// tools around them, one subcommand per job. Run "fastfeed help" for the list.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"decode": {"decode FAST messages to JSON lines", runDecode},
		"pub":    {"simulate order books and publish them on multicast (FAST)", runPub},
		"feed":   {"feed handler: join groups, recover gaps, build books", runFeed},
		"demo":   {"publisher and handler on loopback, live books, recovery and latency", runDemo},
		"oms":    {"reference OMS client: subscribe to a handler's FIX service, print books", runOMS},
		"bench":  {"benchmark suite: microbenchmarks, end to end vs a bare receiver, REPORT.md and plot", runBench},
		"replay": {"replay a pcap/pcapng capture into a handler or onto multicast", runReplay},
		"record": {"record multicast groups to a pcapng/pcap capture", runRecord},
		"soak":   {"run the fault scenarios round after round; books must equal the ground truth", runSoak},
	}
}

// usageError is returned for bad command lines; main prints it with the usage and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
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
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if _, ok := err.(*usageError); ok {
			fmt.Fprintf(stderr, "fastfeed %s: %v\n", args[0], err)
			return 2
		}
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintf(stderr, "fastfeed %s: %v\n", args[0], err)
		return 1
	}
	return 0
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
	fmt.Fprintln(w, "\nRun 'fastfeed <command> -h' for a command's flags.")
}

// parseInterspersed parses flags that may come before or after positional arguments, and
// returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "-" || args[0][0] != '-' {
			pos = append(pos, args[0])
			args = args[1:]
			continue
		}
		// "--" ends the flags.
		return append(pos, args...), nil
	}
}
