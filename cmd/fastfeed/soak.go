package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"fastfeed/internal/netns"
)

// runSoak runs the fault scenarios (scenario.go) round after round, with more data than
// the test suite and different seeds each round, until --duration is over; it prints
// each result as it comes and the table at the end, and fails if any scenario did.
// Everything runs in a private network namespace, entered by re-executing itself.
func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Minute, "run rounds of scenarios until `D` has passed (a round started is finished)")
	scale := fs.Int("scale", 2, "multiply each scenario's data by `N`")
	only := fs.String("only", "", "run only the scenarios whose names contain this `text`")
	keep := fs.Bool("keep", false, "keep every scenario's logs, dumps and counters (failed ones are always kept)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastfeed soak [--duration D] [--scale N] [--only TEXT] [--keep]")
		fmt.Fprintln(stderr, "\nRuns the fault scenarios of `make test` (random loss, a burst beyond retention, line A loss,")
		fmt.Fprintln(stderr, "recovery service killed, FIX session cut mid-replay, publisher and handler restarts, a request")
		fmt.Fprintln(stderr, "storm, three hosts with a link cut) again and again in a private network namespace, and")
		fmt.Fprintln(stderr, "prints whether every handler's books ended equal to the publisher's ground truth.")
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *duration <= 0 || *scale < 1 || *scale > 100 {
		return &usageError{"need --duration > 0 and 1 <= --scale <= 100"}
	}
	var run []scenario
	for _, s := range scenarios() {
		if strings.Contains(s.name, *only) {
			run = append(run, s)
		}
	}
	if len(run) == 0 {
		return &usageError{fmt.Sprintf("--only %q matches no scenario", *only)}
	}
	handled, code, err := netns.Reexec(ctx, append([]string{"soak"}, args...))
	switch {
	case err != nil:
		return fmt.Errorf("soak needs a private network namespace: %w", err)
	case handled:
		if code != 0 {
			return fmt.Errorf("soak exited with status %d", code)
		}
		return nil
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "fastfeed-soak-")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "soak: %d scenarios per round, scale %d, for %v; logs in %s\n", len(run), *scale, *duration, root)
	end := time.Now().Add(*duration)
	var results []scenarioResult
	failed := 0
	for round := 1; time.Now().Before(end) && ctx.Err() == nil; round++ {
		for i, s := range run {
			if ctx.Err() != nil {
				break
			}
			dir := fmt.Sprintf("%s/r%03d-%02d", root, round, i)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			env := &scenarioEnv{bin: bin, dir: dir, scale: *scale, seed: uint64(round-1) * 1000}
			r := runScenario(ctx, env, s)
			results = append(results, r)
			verdict := "books equal"
			if r.Err != nil || !r.BooksEqual {
				failed++
				verdict = fmt.Sprintf("FAILED: %v (logs in %s)", r.Err, dir)
			} else if !*keep {
				os.RemoveAll(dir)
			}
			fmt.Fprintf(stdout, "%s  round %d  %-40s %6.1fs  %s\n", time.Now().Format("15:04:05"), round, r.Name, r.Elapsed.Seconds(), firstLine(verdict))
		}
	}
	fmt.Fprintln(stdout)
	if err := writeScenarioTable(stdout, sumRounds(results)); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("soak: %d of %d scenario runs failed (logs in %s)", failed, len(results), root)
	}
	if !*keep {
		os.RemoveAll(root)
	}
	fmt.Fprintf(stdout, "\nsoak: %d scenario runs, every handler's books equal to the ground truth\n", len(results))
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// sumRounds adds up the rounds of each scenario into one row, in the order of first
// appearance; the row's books are equal only if they were in every round.
func sumRounds(rs []scenarioResult) []scenarioResult {
	var out []scenarioResult
	index := map[string]int{}
	runs := map[string][2]int{} // runs, passed
	for _, r := range rs {
		i, ok := index[r.Name]
		if !ok {
			i = len(out)
			index[r.Name] = i
			out = append(out, scenarioResult{Name: r.Name, BooksEqual: true})
		}
		o := &out[i]
		o.Handlers = max(o.Handlers, r.Handlers)
		o.Datagrams += r.Datagrams
		o.Injected += r.Injected
		o.Gaps += r.Gaps
		o.RecoveredAB += r.RecoveredAB
		o.RecoveredFIX += r.RecoveredFIX
		o.Snapshots += r.Snapshots
		o.Elapsed += r.Elapsed
		n := runs[r.Name]
		n[0]++
		if r.Err == nil && r.BooksEqual {
			n[1]++
		} else {
			o.BooksEqual = false
		}
		runs[r.Name] = n
		o.Check = fmt.Sprintf("%d of %d runs passed; last: %s", n[1], n[0], r.Check)
	}
	return out
}
