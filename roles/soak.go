package roles

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"fastfeed/internal/netns"
	"fastfeed/scenario"
)

// Soak is fastfeed soak: the fault scenarios of package scenario, round after round, in
// a private network namespace entered by re-executing itself.
func Soak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("soak", stderr,
		"usage: fastfeed soak [--duration D] [--scale N] [--only TEXT] [--keep]",
		"\nRuns the fault scenarios of `make test` (random loss, a burst beyond retention, line A loss,",
		"recovery service killed, FIX session cut mid-replay, publisher and handler restarts, a request",
		"storm, three hosts with a link cut, N handlers joining late at once with and without snapshot",
		"channels) again and again in a private network namespace, and",
		"prints whether every handler's books ended equal to the publisher's ground truth.")
	duration := fs.Duration("duration", 10*time.Minute, "run rounds of scenarios until `D` has passed (a round started is finished)")
	scale := fs.Int("scale", 2, "multiply each scenario's data by `N`")
	only := fs.String("only", "", "run only the scenarios whose names contain this `text`")
	late := fs.Int("late-handlers", scenario.LateJoinHandlers, "handler processes the late-join scenarios start at once (`N`, e.g. 100)")
	keep := fs.Bool("keep", false, "keep every scenario's logs, dumps and counters (failed ones are always kept)")
	if _, err := parse(fs, args, parseOpts{}); err != nil {
		return err
	}
	if *duration <= 0 || *scale < 1 || *scale > 100 {
		return usagef("need --duration > 0 and 1 <= --scale <= 100")
	}
	if *late < 1 || *late > 500 {
		return usagef("--late-handlers %d: want 1..500", *late)
	}
	run := scenario.Select(*only)
	if len(run) == 0 {
		return usagef("--only %q matches no scenario", *only)
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
	return scenario.Soak(ctx, scenario.SoakConfig{Bin: bin, Scenarios: run, Duration: *duration, Scale: *scale, Keep: *keep, LateHandlers: *late}, stdout)
}
