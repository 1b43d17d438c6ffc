package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// loadAverage returns the host's 1-minute load average, or -1.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// NATSBenchRow is one `nats bench` pub/sub run.
type NATSBenchRow struct {
	Subscribers int
	Size        int
	MsgsPerSec  float64 // delivered to all subscribers together
	Load        float64 // the host's 1-minute load average after the run (-1: unknown)
}

var aggregated = regexp.MustCompile(`subscriber aggregated stats: ([0-9,]+) msgs/sec`)

// natsBenchTimeout bounds one nats bench pub/sub run: a subscriber that lost messages
// (the server cut it off as a slow consumer) waits for them for ever.
const natsBenchTimeout = time.Minute

// NATSBench runs the NATS CLI's `nats bench sub` with each count of subscribers and
// `nats bench pub` (one publisher) against url, messages of size bytes, and returns the
// subscribers' aggregated rates: the engine's own ceiling on this machine. A run that
// fails or outlasts natsBenchTimeout is an error (joined with the others'), and the
// next count is run.
func NATSBench(ctx context.Context, cli, url string, subs []int, size, msgs int) ([]NATSBenchRow, error) {
	var rows []NATSBenchRow
	var errs []error
	for _, n := range subs {
		r, err := natsBench(ctx, cli, url, n, size, msgs, natsBenchTimeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("%d subscribers: %w", n, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		rows = append(rows, r)
	}
	return rows, errors.Join(errs...)
}

func natsBench(ctx context.Context, cli, url string, n, size, msgs int, timeout time.Duration) (NATSBenchRow, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sub := exec.CommandContext(ctx, cli, "bench", "sub", "fastfeed.bench", "--server", url, "--clients", strconv.Itoa(n),
		"--msgs", strconv.Itoa(msgs), "--size", strconv.Itoa(size)+"B", "--no-progress")
	var out strings.Builder
	sub.Stdout, sub.Stderr = &out, &out
	sub.WaitDelay = 5 * time.Second // a child holding its output open does not hold the run
	if err := sub.Start(); err != nil {
		return NATSBenchRow{}, err
	}
	time.Sleep(time.Second)
	pub := exec.CommandContext(ctx, cli, "bench", "pub", "fastfeed.bench", "--server", url, "--clients", "1",
		"--msgs", strconv.Itoa(msgs), "--size", strconv.Itoa(size)+"B", "--no-progress")
	if b, err := pub.CombinedOutput(); err != nil {
		_ = sub.Process.Kill()
		_ = sub.Wait()
		return NATSBenchRow{}, fmt.Errorf("nats bench pub: %v: %s", err, b)
	}
	if err := sub.Wait(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no result in %v (a subscriber short of messages?): %w", timeout, err)
		}
		return NATSBenchRow{}, fmt.Errorf("nats bench sub: %v: %s", err, lastLines(out.String(), 5))
	}
	m := aggregated.FindStringSubmatch(out.String())
	if m == nil {
		return NATSBenchRow{}, fmt.Errorf("nats bench sub: no aggregated rate in its output: %s", lastLines(out.String(), 5))
	}
	v, _ := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
	return NATSBenchRow{Subscribers: n, Size: size, MsgsPerSec: v, Load: loadAverage()}, nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// WriteFanoutSVG plots each row's publish-to-consumer latency by percentile.
func WriteFanoutSVG(w io.Writer, rows []FanoutRow) error {
	var curves []Curve
	for _, r := range append(atRate(rows), Capacity(rows)...) {
		if r.Latency == nil || r.Latency.TotalCount() == 0 {
			continue
		}
		name := fmt.Sprintf("%s, %d", r.Mode, r.Consumers)
		if r.Rate > 0 {
			name = fmt.Sprintf("capacity: %d at %.0f datagrams/s", r.Consumers, r.Rate)
		}
		c := CurveOf(name, r.Latency)
		c.Color = Palette[len(curves)%len(Palette)]
		curves = append(curves, c)
	}
	return WriteSVG(w, "publish-to-consumer latency at 1,000 datagrams/s, and at the capacity rate (fastfeed bench --fanout)", curves)
}

// WriteFanout writes the fan-out table (markdown) and the nats bench rows.
func WriteFanout(w io.Writer, rows []FanoutRow, nb []NATSBenchRow, command string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Fan-out\n\n`%s`, %s\n\n", command, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("| distribution | consumers | connections | published entries/s | delivered updates/s | delivered msgs/s | p50 | p99 | conflations | NATS drops | load avg | notes |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rows {
		if r.Rate > 0 {
			continue // capacity steps: their own table
		}
		conns := "-"
		if r.Connections > 0 {
			conns = strconv.Itoa(r.Connections)
		}
		if r.Err != "" {
			fmt.Fprintf(&b, "| %s | %d | %s | not measured: %s | | | | | | | %s | %s |\n", r.Mode, r.Consumers, conns, r.Err, loadOf(r), r.Note)
			continue
		}
		msgs := "-"
		if r.Messages > 0 {
			msgs = fmt.Sprintf("%.0f", r.Messages)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %.0f | %s | %s | %s | %d | %d | %s | %s |\n", r.Mode, r.Consumers, conns, r.Published, r.Updates, msgs,
			r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Conflations, r.Drops, loadOf(r), r.Note)
	}
	if len(nb) > 0 {
		b.WriteString("\n`nats bench` pub/sub on the same machine (one publisher):\n\n| subscribers | message size | delivered msgs/s | load avg |\n|--:|--:|--:|--:|\n")
		for _, r := range nb {
			fmt.Fprintf(&b, "| %d | %d B | %.0f | %s |\n", r.Subscribers, r.Size, r.MsgsPerSec, loadOf(FanoutRow{Load: r.Load}))
		}
	}
	writeCapacity(&b, rows)
	writeTargets(&b, rows, nb)
	_, err := io.WriteString(w, b.String())
	return err
}

func loadOf(r FanoutRow) string {
	if r.Load <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.Load)
}

// TargetP99 is the latency bound of issue 13's fan-out targets: at p99 <= 10 ms, 10 times
// the client updates/s of the in-handler FIX bus and half of nats bench's rate.
const TargetP99 = 10 * time.Millisecond

// atRate returns the rows measured at the feed's rate (not capacity steps).
func atRate(rows []FanoutRow) []FanoutRow {
	var out []FanoutRow
	for _, r := range rows {
		if r.Rate == 0 {
			out = append(out, r)
		}
	}
	return out
}

// writeCapacity writes the capacity steps' table, each with its verdict.
func writeCapacity(b *strings.Builder, rows []FanoutRow) {
	caps := Capacity(rows)
	if len(caps) == 0 {
		return
	}
	b.WriteString("\nCapacity: the same NATS consumers with the feed's rate raised, each rate on a fresh chain, up to the first that fails ")
	b.WriteString("(passes: p99 <= 10 ms, no conflation, no NATS drop, no RptSeq hole, the feed at its rate, skipping at most 1% of it):\n\n")
	b.WriteString("| distribution | consumers | feed datagrams/s | published entries/s | delivered updates/s | delivered msgs/s | p50 | p99 | conflations | NATS drops | RptSeq holes | feed skipped | load avg | verdict |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rows {
		if r.Rate == 0 {
			continue
		}
		if r.Err != "" {
			verdict := "fails"
			if strings.HasPrefix(r.Err, notRun) {
				verdict = "-"
			}
			fmt.Fprintf(b, "| %s | %d | %.0f | %s | | | | | | | | | %s | %s |\n", r.Mode, r.Consumers, r.Rate, r.Err, loadOf(r), verdict)
			continue
		}
		verdict := "passes"
		if why := CapacityFailure(r); why != "" {
			verdict = "fails: " + why
		}
		fmt.Fprintf(b, "| %s | %d | %.0f | %.0f | %.0f | %.0f | %s | %s | %d | %d | %d | %d | %s | %s |\n", r.Mode, r.Consumers, r.Rate, r.Published,
			r.Updates, r.Messages, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Conflations, r.Drops, r.Gaps, r.Skipped, loadOf(r), verdict)
	}
	b.WriteString("\n")
	for _, c := range caps {
		if c.Rate == 0 {
			fmt.Fprintf(b, "- capacity of %s, %d consumers: none of its rates passed\n", c.Mode, c.Consumers)
			continue
		}
		fmt.Fprintf(b, "- capacity of %s, %d consumers: the feed at %.0f datagrams/s, %.0f msgs/s delivered at p99 %s\n", c.Mode, c.Consumers,
			c.Rate, c.Messages, c.P99.Round(time.Microsecond))
	}
}

// writeTargets states the targets as ratios of this run's rows. 10x the FIX bus: each NATS
// direct row at the feed's rate against the in-handler FIX bus's best row within
// TargetP99, at the same rate. Half of nats bench (a maximum rate): the capacity steps'
// best row when there are any, since at the feed's rate the workload bounds what the
// consumers can receive; without capacity steps, the rows at the feed's rate.
func writeTargets(b *strings.Builder, rows []FanoutRow, nb []NATSBenchRow) {
	caps := Capacity(rows)
	all := rows
	rows = atRate(rows)
	var fix *FanoutRow
	for i := range rows {
		r := &rows[i]
		if r.Mode == "FIX bus in the handler" && r.Err == "" && r.P99 <= TargetP99 && (fix == nil || r.Updates > fix.Updates) {
			fix = r
		}
	}
	var best NATSBenchRow
	for _, r := range nb {
		if r.MsgsPerSec > best.MsgsPerSec {
			best = r
		}
	}
	b.WriteString("\nTargets (at p99 <= 10 ms: >= 10x the in-handler FIX bus's client updates/s, >= 0.5x nats bench's msgs/s):\n\n")
	if fix == nil { // none within 10 ms: its smallest row, said so
		for i := range rows {
			if r := &rows[i]; r.Mode == "FIX bus in the handler" && r.Err == "" && (fix == nil || r.Consumers < fix.Consumers) {
				fix = r
			}
		}
	}
	switch {
	case fix == nil:
		b.WriteString("- no FIX bus row: no reference\n")
	case fix.P99 > TargetP99:
		fmt.Fprintf(b, "- reference: FIX bus in the handler, %d clients, %.0f updates/s at p99 %s (none of its rows within 10 ms: its smallest)\n",
			fix.Consumers, fix.Updates, fix.P99.Round(time.Microsecond))
	default:
		fmt.Fprintf(b, "- reference: FIX bus in the handler, %d clients, %.0f updates/s at p99 %s\n", fix.Consumers, fix.Updates, fix.P99.Round(time.Microsecond))
	}
	if best.MsgsPerSec > 0 {
		fmt.Fprintf(b, "- reference: nats bench, %d subscribers, %.0f msgs/s\n", best.Subscribers, best.MsgsPerSec)
	}
	yes := map[bool]string{true: "met", false: "NOT met"}
	if len(caps) > 0 {
		b.WriteString("- 10x the FIX bus: judged on the rows at the feed's rate, like the FIX bus's own; their msgs/s are bounded by the feed's rate " +
			"(consumers x datagrams/s), not by NATS or the consumers, so half of nats bench (a maximum rate) is judged on the capacity rows below\n")
	}
	for _, r := range rows {
		if !strings.HasPrefix(r.Mode, "NATS direct") {
			continue
		}
		if r.Err != "" {
			fmt.Fprintf(b, "- %s, %d consumers: not measured\n", r.Mode, r.Consumers)
			continue
		}
		within := r.P99 <= TargetP99
		fmt.Fprintf(b, "- %s, %d consumers: p99 %s (%s)", r.Mode, r.Consumers, r.P99.Round(time.Microsecond), map[bool]string{true: "within 10 ms", false: "over 10 ms"}[within])
		if fix != nil && fix.Updates > 0 {
			x := r.Updates / fix.Updates
			fmt.Fprintf(b, "; updates/s %.1fx the FIX bus (%s)", x, yes[within && x >= 10])
		}
		if best.MsgsPerSec > 0 && r.Messages > 0 {
			x := r.Messages / best.MsgsPerSec
			if len(caps) > 0 {
				fmt.Fprintf(b, "; msgs/s %.2fx nats bench (at the feed's rate: not the row of that target)", x)
			} else {
				fmt.Fprintf(b, "; msgs/s %.2fx nats bench (%s)", x, yes[within && x >= 0.5])
			}
		}
		b.WriteString("\n")
	}
	for _, c := range caps {
		if c.Rate == 0 {
			fmt.Fprintf(b, "- half of nats bench, on the capacity of %s, %d consumers: no rate passed (NOT met)\n", c.Mode, c.Consumers)
			continue
		}
		fmt.Fprintf(b, "- half of nats bench, on the capacity of %s, %d consumers (the feed at %.0f datagrams/s, its highest rate with p99 <= 10 ms and no conflation): %.0f msgs/s",
			c.Mode, c.Consumers, c.Rate, c.Messages)
		if best.MsgsPerSec > 0 {
			x := c.Messages / best.MsgsPerSec
			fmt.Fprintf(b, ", %.2fx nats bench (%s)", x, yes[x >= 0.5])
		} else {
			b.WriteString(" (no nats bench row: not judged)")
		}
		if fix != nil && fix.Updates > 0 {
			fmt.Fprintf(b, "; updates/s %.1fx the FIX bus", c.Updates/fix.Updates)
		}
		if highestRate(all, c) {
			b.WriteString("; the highest rate tried: the capacity may be higher")
		}
		b.WriteString("\n")
	}
}

// highestRate reports whether c's rate is the highest its consumers' steps tried.
func highestRate(rows []FanoutRow, c FanoutRow) bool {
	for _, r := range rows {
		if r.Rate > c.Rate && r.Consumers == c.Consumers {
			return false
		}
	}
	return true
}
