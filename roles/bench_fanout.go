package roles

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"fastfeed/bench"
	"fastfeed/bus/natsbus"
	"fastfeed/fast"
)

// The fan-out report and plot fastfeed bench --fanout writes.
const (
	FanoutFile = "FANOUT.md"
	FanoutPlot = "fanout.svg"
)

// fanoutFlags are bench's --fanout flags.
type fanoutFlags struct {
	on                bool
	direct, bus, gw   string
	directOwn         string
	perConn           int
	natsCLI           string
	window            time.Duration
	natsBenchMessages int
	rates, capacity   string
}

func (f *fanoutFlags) register(fs interface {
	BoolVar(*bool, string, bool, string)
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	IntVar(*int, string, int, string)
}) {
	fs.BoolVar(&f.on, "fanout", false, "measure distribution instead: the handler's FIX bus, NATS direct consumers and NATS + gateway, and nats bench; writes "+FanoutFile)
	fs.StringVar(&f.direct, "fanout-direct", "10,100,1000", "with --fanout: `counts` of NATS consumers sharing connections (--fanout-per-conn on each)")
	fs.IntVar(&f.perConn, "fanout-per-conn", 100, "with --fanout: NATS consumers per connection (one process's) in the --fanout-direct rows")
	fs.StringVar(&f.directOwn, "fanout-direct-own", "10,100", "with --fanout: `counts` of NATS consumers each on its own connection")
	fs.StringVar(&f.bus, "fanout-bus", "10,50", "with --fanout: `counts` of FIX clients of the handler's own service")
	fs.StringVar(&f.gw, "fanout-gateway", "10,50", "with --fanout: `counts` of FIX clients of a gateway fed from NATS")
	fs.StringVar(&f.rates, "fanout-rates", "1000,1500,2000,3000,4000,6000,8000", "with --fanout: the feed's `rates` (datagrams/s, ascending) of the capacity steps, up to the first\n"+
		"with p99 > 10 ms, a conflation, a NATS drop or the feed short of its rate (empty: none)")
	fs.StringVar(&f.capacity, "fanout-capacity-consumers", "1000", "with --fanout: `counts` of NATS consumers (--fanout-per-conn on each) of the capacity steps")
	fs.DurationVar(&f.window, "fanout-window", 3*time.Second, "with --fanout: each measured `window`")
	fs.StringVar(&f.natsCLI, "nats-cli", "bin/nats", "the NATS CLI for nats bench (scripts/deps.sh --bench builds it); missing: no nats bench row")
	fs.IntVar(&f.natsBenchMessages, "nats-bench-msgs", 200000, "with --fanout: messages of each nats bench run")
}

func counts(flagName, s string) ([]int, error) {
	out := []int{} // empty, not nil: no row
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 5000 {
			return nil, usagef("%s: %q is not a count in 1..5000", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// capacityRates parses --fanout-rates: ascending rates in 1..100000; empty: none (an
// empty, not nil, slice).
func capacityRates(s string) ([]float64, error) {
	out := []float64{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v >= 1 && v <= 100000) {
			return nil, usagef("--fanout-rates: %q is not a rate in 1..100000 datagrams/s", f)
		}
		if len(out) > 0 && v <= out[len(out)-1] {
			return nil, usagef("--fanout-rates: %q: want ascending rates", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// runFanout is fastfeed bench --fanout, inside the private namespace.
func runFanout(ctx context.Context, f fanoutFlags, ts *fast.Templates, out, command string, stdout, stderr io.Writer) error {
	cfg := bench.FanoutConfig{Templates: ts, Window: f.window, Progress: progressLine(stderr)}
	var err error
	if cfg.Direct, err = counts("--fanout-direct", f.direct); err != nil {
		return err
	}
	if cfg.DirectOwn, err = counts("--fanout-direct-own", f.directOwn); err != nil {
		return err
	}
	if f.perConn < 1 || f.perConn > 5000 {
		return usagef("--fanout-per-conn %d: want 1..5000", f.perConn)
	}
	cfg.PerConn = f.perConn
	if cfg.Bus, err = counts("--fanout-bus", f.bus); err != nil {
		return err
	}
	if cfg.Gateway, err = counts("--fanout-gateway", f.gw); err != nil {
		return err
	}
	if cfg.Capacity, err = capacityRates(f.rates); err != nil {
		return err
	}
	if cfg.CapacityConsumers, err = counts("--fanout-capacity-consumers", f.capacity); err != nil {
		return err
	}
	if len(cfg.Capacity)*len(cfg.CapacityConsumers) > 12 {
		return usagef("--fanout-rates x --fanout-capacity-consumers: at most 12 capacity steps")
	}
	if f.window <= 0 || f.window > time.Minute {
		return usagef("--fanout-window %v: want 0 < D <= 1m", f.window)
	}
	rows, err := bench.Fanout(ctx, cfg)
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	var nb []bench.NATSBenchRow
	if _, serr := os.Stat(f.natsCLI); serr == nil {
		srv, err := natsbus.StartServer(natsbus.ServerConfig{})
		if err != nil {
			return err
		}
		nb, err = bench.NATSBench(ctx, f.natsCLI, srv.URL(), []int{10, 100}, 150, f.natsBenchMessages)
		srv.Shutdown()
		if err != nil {
			fmt.Fprintf(stderr, "fastfeed bench: nats bench: %v\n", err)
		}
	} else {
		fmt.Fprintf(stderr, "fastfeed bench: no %s (scripts/deps.sh --bench builds it): no nats bench row\n", f.natsCLI)
	}
	path := filepath.Join(out, FanoutFile)
	if err := writeFile(path, func(w io.Writer) error { return bench.WriteFanout(w, rows, nb, command) }); err != nil {
		return err
	}
	if err := bench.WriteFanout(stdout, rows, nb, command); err != nil {
		return err
	}
	svg := filepath.Join(out, FanoutPlot)
	if err := writeFile(svg, func(w io.Writer) error { return bench.WriteFanoutSVG(w, rows) }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s and %s\n", path, svg)
	return nil
}
