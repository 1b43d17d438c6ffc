package scenario

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Select returns the scenarios whose names contain only (all for "").
func Select(only string) []Scenario {
	var out []Scenario
	for _, s := range All() {
		if strings.Contains(s.Name, only) {
			out = append(out, s)
		}
	}
	return out
}

// SoakConfig configures Soak.
type SoakConfig struct {
	Bin       string        // the fastfeed executable
	Scenarios []Scenario    // run in this order, every round
	Duration  time.Duration // start rounds until this has passed (a round started is finished)
	Scale     int           // multiplies each scenario's data
	Keep      bool          // keep every scenario's logs, dumps and counters (failed ones are always kept)
	// LateHandlers is how many handlers the late-join scenarios start at once; 0 means
	// LateJoinHandlers.
	LateHandlers int
}

// Soak runs the scenarios round after round, with Scale times the test suite's data and
// different seeds each round, until Duration is over; it prints each result as it comes
// and the table at the end, and fails if any scenario did. Call it inside a private
// network namespace.
func Soak(ctx context.Context, cfg SoakConfig, stdout io.Writer) error {
	if cfg.Scale < 1 || len(cfg.Scenarios) == 0 {
		return fmt.Errorf("scenario: soak: scale %d, %d scenarios", cfg.Scale, len(cfg.Scenarios))
	}
	root, err := os.MkdirTemp("", "fastfeed-soak-")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "soak: %d scenarios per round, scale %d, for %v; logs in %s\n", len(cfg.Scenarios), cfg.Scale, cfg.Duration, root)
	end := time.Now().Add(cfg.Duration)
	var results []Result
	failed := 0
	for round := 1; time.Now().Before(end) && ctx.Err() == nil; round++ {
		for i, s := range cfg.Scenarios {
			if ctx.Err() != nil {
				break
			}
			dir := fmt.Sprintf("%s/r%03d-%02d", root, round, i)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			env := &Env{bin: cfg.Bin, dir: dir, scale: cfg.Scale, seed: uint64(round-1) * 1000, lateHandlers: cfg.LateHandlers}
			r := runOne(ctx, env, s)
			results = append(results, r)
			verdict := "books equal"
			if r.Err != nil || !r.BooksEqual {
				failed++
				verdict = fmt.Sprintf("FAILED: %v (logs in %s)", r.Err, dir)
			} else {
				if r.Check != "" {
					verdict += "; " + r.Check
				}
				if !cfg.Keep {
					os.RemoveAll(dir)
				}
			}
			fmt.Fprintf(stdout, "%s  round %d  %-40s %6.1fs  %s\n", time.Now().Format("15:04:05"), round, r.Name, r.Elapsed.Seconds(), firstLine(verdict))
		}
	}
	fmt.Fprintln(stdout)
	if err := WriteTable(stdout, SumRounds(results)); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("soak: %d of %d scenario runs failed (logs in %s)", failed, len(results), root)
	}
	if !cfg.Keep {
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

// SumRounds adds up the rounds of each scenario into one row, in the order of first
// appearance; the row's books are equal only if they were in every round.
func SumRounds(rs []Result) []Result {
	var out []Result
	index := map[string]int{}
	runs := map[string][2]int{} // runs, passed
	for _, r := range rs {
		i, ok := index[r.Name]
		if !ok {
			i = len(out)
			index[r.Name] = i
			out = append(out, Result{Name: r.Name, BooksEqual: true})
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
		}
		if !r.BooksEqual {
			o.BooksEqual = false
		}
		runs[r.Name] = n
		o.Check = fmt.Sprintf("%d of %d runs passed; last: %s", n[1], n[0], r.Check)
	}
	return out
}
