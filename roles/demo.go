package roles

import (
	"context"
	"fmt"
	"io"
	"time"

	"fastfeed/demo"
	"fastfeed/internal/netns"
)

// Demo is fastfeed demo: package demo's publisher and handler in one process for a
// bounded time, in a private network namespace when it can have one, so nothing reaches
// a real interface, and on plain loopback (IP_MULTICAST_IF 127.0.0.1) otherwise.
func Demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr, "usage: fastfeed demo [--duration D] [--instruments N] [--rate R] [--loss P] [--show N] [--no-netns]")
	duration := fs.Duration("duration", 15*time.Second, "how long the market runs")
	instruments := fs.Int("instruments", 12, "instruments to simulate")
	rate := fs.Float64("rate", 5000, "incremental datagrams per second")
	loss := fs.Float64("loss", 0.01, "receive-path loss injected in the handler, to show recovery")
	show := fs.Int("show", 6, "instruments shown")
	templates := fs.String("templates", DefaultTemplates, "FAST template XML `file`")
	hostLoopback := fs.Bool("no-netns", false, "run on the host's loopback instead of a private network namespace")
	if _, err := parse(fs, args, parseOpts{}); err != nil {
		return err
	}
	if *duration <= 0 || *duration > time.Hour || *instruments <= 0 || *rate < 0 || *loss < 0 || *loss > 0.5 || *show < 1 {
		return usagef("need 0 < --duration <= 1h, --instruments > 0, --rate >= 0, 0 <= --loss <= 0.5, --show > 0")
	}
	if !*hostLoopback {
		// Outside a namespace this runs the demo again inside one; inside, it brings lo up.
		handled, code, err := netns.Reexec(ctx, append([]string{"demo"}, args...))
		switch {
		case err == nil && handled:
			if code != 0 {
				return fmt.Errorf("demo exited with status %d", code)
			}
			return nil
		case err != nil:
			fmt.Fprintf(stderr, "fastfeed demo: no private network namespace (%v); using the host's loopback\n", err)
		}
	}
	ts, err := LoadTemplates(*templates, *templates != DefaultTemplates)
	if err != nil {
		return err
	}
	return demo.Run(ctx, demo.Options{Templates: ts, Duration: *duration, Instruments: *instruments, Rate: *rate,
		Loss: *loss, Show: *show, Out: stdout})
}
