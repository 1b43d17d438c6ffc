package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/feed"
)

// Report files written by WriteReport.
const (
	ReportFile = "REPORT.md"
	PlotFile   = "latency.svg"
)

// Targets of the handler against the baseline.
const (
	TargetP99Ratio  = 1.5    // handler p99 / baseline p99 at TargetP99Rate and at the maximum rate, at most
	TargetP99Rate   = 100000 // msgs/s
	TargetRateRatio = 0.8    // handler rate / baseline rate at the maximum, at least, with no kernel drops
	// In busy-poll mode (Config.BusyPoll): handler p50 / baseline p50 at the paced
	// rates TargetP50Rates, at most, and the kernel rx->decoded stage's p50, at most.
	TargetP50Ratio  = 1.1
	TargetDecodeP50 = 5 * time.Microsecond
)

// TargetP50Rates are the paced rates of the busy-poll p50 target.
var TargetP50Rates = []float64{10000, 100000}

// Target is one target's verdict.
type Target struct {
	Name     string
	Measured bool // false if the runs it needs were not made
	Value    float64
	Met      bool
	Detail   string
	Unit     string // of Value: "x" (a ratio, the default) or "µs"
}

// Targets evaluates the targets on r: by default the p99 ratio at TargetP99Rate, the
// rate ratio and the p99 ratio at the maximum rate; in busy-poll mode the p50 ratio at
// each of TargetP50Rates, the kernel rx->decoded p50 and the rate ratio.
func Targets(r *Results) []Target {
	var out []Target
	byRate := func(rate float64) (RateResult, bool) {
		for _, rr := range r.Rates {
			if rr.Rate == rate {
				return rr, true
			}
		}
		return RateResult{}, false
	}
	ratioTarget := func(rate float64, q float64, limit float64, name string) Target {
		t := Target{Name: fmt.Sprintf("%s tick-to-handler <= %.1fx the baseline's %s at %s msgs/s", name, limit, name, RateLabel(rate))}
		if rr, ok := byRate(rate); ok {
			hp, bp := rr.Handler.Total().ValueAtQuantile(q), rr.Baseline.Total().ValueAtQuantile(q)
			if bp > 0 {
				t.Measured, t.Value = true, float64(hp)/float64(bp)
				t.Met = t.Value <= limit
				t.Detail = fmt.Sprintf("handler %s %s µs, baseline %s %s µs", name, us(time.Duration(hp)), name, us(time.Duration(bp)))
			}
		}
		return t
	}
	if r.BusyPoll {
		for _, rate := range TargetP50Rates {
			out = append(out, ratioTarget(rate, 50, TargetP50Ratio, "p50"))
		}
		dec := Target{Name: fmt.Sprintf("kernel rx->decoded p50 <= %s µs at %s msgs/s (busy poll)", us(TargetDecodeP50), rateList(TargetP50Rates)), Unit: "µs"}
		for _, rate := range TargetP50Rates {
			if rr, ok := byRate(rate); ok && rr.Handler.Stages[feed.StageDecode] != nil && rr.Handler.Stages[feed.StageDecode].TotalCount() > 0 {
				v := rr.Handler.Stages[feed.StageDecode].ValueAtQuantile(50)
				if !dec.Measured || float64(v)/1e3 > dec.Value {
					dec.Value = float64(v) / 1e3
				}
				dec.Measured = true
				if dec.Detail != "" {
					dec.Detail += ", "
				}
				dec.Detail += fmt.Sprintf("%s msgs/s: %s µs", RateLabel(rate), us(time.Duration(v)))
			}
		}
		dec.Met = dec.Measured && dec.Value <= float64(TargetDecodeP50)/1e3
		out = append(out, dec)
	} else {
		out = append(out, ratioTarget(TargetP99Rate, 99, TargetP99Ratio, "p99"))
	}
	rate := Target{Name: fmt.Sprintf("handler's maximum rate >= %.1fx the baseline's, with no kernel drops", TargetRateRatio)}
	if rr, ok := byRate(0); ok && rr.Baseline.Rate > 0 {
		h, b := rr.Handler, rr.Baseline
		rate.Measured, rate.Value = true, h.Rate/b.Rate
		rate.Met = rate.Value >= TargetRateRatio && h.KernelDrops == 0
		rate.Detail = fmt.Sprintf("handler %.0f msgs/s with %d kernel drops, baseline %.0f msgs/s with %d kernel drops",
			h.Rate, h.KernelDrops, b.Rate, b.KernelDrops)
	}
	out = append(out, rate)
	if !r.BusyPoll {
		out = append(out, ratioTarget(0, 99, TargetP99Ratio, "p99"))
	}
	return out
}

// Verdict formats a target's outcome: "1.23x: met", "4.1 µs: not met", "not measured".
func (t Target) Verdict() string {
	if !t.Measured {
		return "not measured"
	}
	met := "not met"
	if t.Met {
		met = "met"
	}
	return t.ValueString() + ": " + met
}

// ValueString formats Value with its unit.
func (t Target) ValueString() string {
	if t.Unit == "µs" {
		return fmt.Sprintf("%.2f µs", t.Value)
	}
	return fmt.Sprintf("%.2fx", t.Value)
}

func rateList(rates []float64) string {
	var s []string
	for _, r := range rates {
		s = append(s, RateLabel(r))
	}
	return strings.Join(s, " and ")
}

// Curves returns the plot's curves: tick-to-handler for each rate (solid) and the
// baseline's tick-to-recvmmsg (dashed, same color).
func Curves(r *Results) []Curve {
	var out []Curve
	for i, rr := range r.Rates {
		color := Palette[i%len(Palette)]
		h := CurveOf(fmt.Sprintf("handler %s msgs/s", RateLabel(rr.Rate)), rr.Handler.Total())
		b := CurveOf(fmt.Sprintf("baseline %s msgs/s", RateLabel(rr.Rate)), rr.Baseline.Total())
		h.Color, b.Color, b.Dashed = color, color, true
		out = append(out, h, b)
	}
	return out
}

// WriteReport writes ReportFile and PlotFile into dir; command is the command line that
// reproduces them, quoted in the report.
func WriteReport(dir string, r *Results, command string) error {
	var svg bytes.Buffer
	if err := WriteSVG(&svg, "Tick-to-handler latency: handler (solid) vs bare recvmmsg baseline (dashed)", Curves(r)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, PlotFile), svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r, command, PlotFile); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ReportFile), md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// WriteMarkdown writes the report: the machine, the targets, the end-to-end table, the
// ratios, the handler's stages, the plot (plot, a path relative to the report) and the
// microbenchmarks.
func WriteMarkdown(w io.Writer, r *Results, command, plot string) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("# fastfeed benchmark report\n\n")
	p("Produced by `%s` on %s (took %s).\n\n", command, r.Started.Format(time.RFC3339), r.Took.Round(time.Second))
	e := r.Env
	p("Machine: %s, %d CPUs, %s/%s, Linux %s, %s. Publisher, receiver and loopback multicast share the machine, ",
		orUnknown(e.CPU), e.NumCPU, e.OS, e.Arch, orUnknown(e.Kernel), e.GoVersion)
	if r.SenderProcess {
		p("the sender in a child process and the receiver in the bench's (GOMAXPROCS %d), inside a private network namespace. ", e.GOMAXPROCS)
	} else {
		p("in one process (GOMAXPROCS %d) inside a private network namespace. ", e.GOMAXPROCS)
	}
	if r.BusyPoll {
		p("Receive mode: **busy poll** (handler and baseline alike spin on recvmmsg(MSG_DONTWAIT) on a locked OS thread, never sleeping in epoll")
		if r.PinCPU {
			p(", pinned to CPU %d", r.CPU)
		}
		if r.SharedSockets {
			p("; **shared sockets**: every group joined on one socket, so each turn is one recvmmsg")
		} else {
			p("; a socket per group: each turn asks epoll_wait, without waiting, which has data, then reads one")
		}
		p("). ")
	} else {
		p("Receive mode: default (epoll wakeups, recvmmsg batches")
		if r.PinCPU {
			p("; the receiving thread pinned to CPU %d", r.CPU)
		}
		if r.SharedSockets {
			p("; **shared sockets**: every group joined on one socket")
		}
		p("). ")
	}
	p("Load average before the run: %s ", orUnknown(e.LoadAvg))
	p("(the machine is shared: other work competes for the CPUs, and its noise is in these figures).\n\n")
	where := "same process"
	if r.SenderProcess {
		where = "its own process"
	}
	p("Paced runs (10k, 100k, ...): the publisher (market simulator, FAST encoder, sendmmsg; %s) publishes %d instruments, one multicast group each, ",
		where, r.Instruments)
	p("for %s at the target rate; the first %s are left out of the histograms (warm-up); *msgs/s* is what was achieved, the publisher sharing the CPUs. ", r.Duration, r.Warmup)
	if r.SpinPacing {
		p("Pacing: **spin** (the publisher spins through its waits, so that each datagram leaves when it is due and its send->kernel rx is the kernel's path alone; `--pacing spin`). ")
	} else {
		p("Pacing: sleep (the publisher sleeps between sends, and Go's timers wake a sub-millisecond sleep up to a millisecond late: it sends a millisecond's datagrams at once, so a datagram's send->kernel rx includes its place in that burst, tens of µs at 10k msgs/s, the same for both receivers; `--pacing spin` sends each when due). ")
	}
	if r.BusyPoll && r.NoWarm {
		p("The handler's cache warming between datagrams is **off** (`--no-warm`). ")
	}
	p("*max*: %d datagrams of one book entry each, over the same %d groups, encoded in advance and handed to sendmmsg in batches of %d as fast as the kernel takes them, no warm-up. ",
		r.Blast, r.Instruments, blastBatch)
	p("Latency starts at the publisher's SendingTime (52), stamped just before sendmmsg. ")
	p("*Handler*: tick-to-handler, until the message's entries are applied to the books and handed to a subscriber. ")
	p("*Baseline*: a bare receiver (recvmmsg, read the kernel timestamp and the SendingTime, nothing else), until recvmmsg returns: this machine's physical limit.")
	if r.Rounds > 1 {
		p(" Each rate ran **%d rounds**, handler and baseline alternating (handler, baseline, handler, ...), each round a fresh publisher and receiver; a row merges a receiver's rounds (histograms merged, counts summed), so that both saw the machine's changing load alike.", r.Rounds)
	}
	p("\n\n")

	p("## Targets\n\n| target | result | value | detail |\n|---|---|---|---|\n")
	for _, t := range Targets(r) {
		verdict, value := "not measured", "-"
		if t.Measured {
			verdict, value = "**not met**", t.ValueString()
			if t.Met {
				verdict = "met"
			}
		}
		p("| %s | %s | %s | %s |\n", t.Name, verdict, value, t.Detail)
	}

	if r.Rounds > 1 {
		p("\nEach row below merges %d runs, alternating with the other receiver's: the load of a shared machine changes between runs, ", r.Rounds)
		p("and alternating spreads it over both receivers, but the spread between runs of the same command (of the tails above all) can still exceed ")
		p("the handler/baseline difference. A ratio below 1, the handler faster than the bare receiver, is such noise.\n")
	} else {
		p("\nEach row below is one run, made one after the other: the load of a shared machine differs between them, and the spread ")
		p("between runs of the same command (of the tails above all) can exceed the handler/baseline difference. A ratio below 1, ")
		p("the handler faster than the bare receiver, is such noise. Repeat the command before drawing conclusions (or use --rounds).\n")
	}
	p("\n## End to end\n\nLatency in µs (HdrHistogram, 3 significant figures).\n\n")
	p("| rate | receiver | sent | entries/msg | received | lost | kernel drops | msgs/s | %s |\n", strings.Join(SummaryColumns[:], " | "))
	p("|---|---|--:|--:|--:|--:|--:|--:|%s\n", strings.Repeat("--:|", len(SummaryColumns)))
	for _, rr := range r.Rates {
		for _, m := range []Measurement{rr.Handler, rr.Baseline} {
			lost := int64(m.Sent) - int64(m.Received)
			p("| %s | %s | %d | %s | %d | %d | %d | %.0f |", RateLabel(rr.Rate), m.Receiver, m.Sent, ratio(float64(m.Entries), float64(m.Sent)),
				m.Received, lost, m.KernelDrops, m.Rate)
			for _, v := range Summarize(m.Total()).Values() {
				p(" %s |", us(v))
			}
			p("\n")
		}
	}

	p("\n## Handler / baseline\n\n| rate | msgs/s | %s |\n|---|--:|%s\n", strings.Join(SummaryColumns[:], " | "), strings.Repeat("--:|", len(SummaryColumns)))
	for _, rr := range r.Rates {
		p("| %s | %s |", RateLabel(rr.Rate), ratio(rr.Handler.Rate, rr.Baseline.Rate))
		hv, bv := Summarize(rr.Handler.Total()).Values(), Summarize(rr.Baseline.Total()).Values()
		for i := range hv {
			p(" %s |", ratio(float64(hv[i]), float64(bv[i])))
		}
		p("\n")
	}

	p("\n## Handler stages\n\n")
	p("send->kernel rx: SendingTime to the kernel's receive timestamp (SO_TIMESTAMPNS); kernel rx->decoded: wakeup, recvmmsg, sequencing and FAST decode, ")
	p("in two parts: *kernel rx->received*, until the read (recvmmsg) that hands the datagram over returns (the datagram waiting in the socket queue for the ")
	p("receiver's wakeup or next turn, the scheduler, the read itself: before our code can see it), and *received->decoded*, our own work after the read ")
	p("(the datagrams before it in the batch, sequencing, decode); ")
	p("decoded->book: the book updates; book->subscribers: the subscriber callbacks. ")
	p("The baseline's send->kernel rx and kernel rx->received, measured the same way, are shown for comparison: what the handler's kernel rx->received ")
	p("exceeds them by is ours (its loop's turn), the rest the kernel's and the scheduler's. ")
	if r.StageEvery > 1 {
		p("The handler's stages are a sample: those of one message in %d of each channel's are timed (`--stage-every`; the others' path is two clock reads shorter), ", r.StageEvery)
		p("its tick-to-handler every message's, as the baseline's rows. ")
	}
	p("µs.\n\n")
	p("| rate | stage | count | %s |\n|---|---|--:|%s\n", strings.Join(SummaryColumns[:], " | "), strings.Repeat("--:|", len(SummaryColumns)))
	for _, rr := range r.Rates {
		for s := feed.Stage(0); s < feed.NumStages; s++ {
			writeStageRow(p, RateLabel(rr.Rate), s.String(), rr.Handler.Stages[s])
			if s == feed.StageDecode {
				writeStageRow(p, RateLabel(rr.Rate), "- kernel rx->received", rr.Handler.Recv)
				writeStageRow(p, RateLabel(rr.Rate), "- received->decoded", rr.Handler.Work)
			}
		}
		writeStageRow(p, RateLabel(rr.Rate), "baseline send->kernel rx", rr.Baseline.Stages[feed.StageWire])
		writeStageRow(p, RateLabel(rr.Rate), "baseline kernel rx->received", rr.Baseline.Recv)
	}

	p("\n## The receiving process\n\n")
	p("From the end of the warm-up to the end of the sending, the part measured (all rounds): minor page faults and involuntary context switches of the bench's process, which runs the receiver ")
	p("(getrusage; the publisher is a child and not counted). A fault on the receiving thread holds up the datagrams behind it for microseconds.\n\n")
	p("| rate | receiver | page faults | preempted |\n|---|---|--:|--:|\n")
	for _, rr := range r.Rates {
		for _, m := range []*Measurement{&rr.Handler, &rr.Baseline} {
			p("| %s | %s | %d | %d |\n", RateLabel(rr.Rate), m.Receiver, m.Faults, m.Preempted)
		}
	}

	p("\n## Latency by percentile\n\n![latency percentiles](%s)\n\n", plot)
	p("x: percentile on HdrHistogram's log scale of 1/(1-p); y: latency in µs, log scale. Solid: handler (tick-to-handler); dashed: baseline; one color per rate.\n")

	if len(r.Micro) > 0 {
		p("\n## Microbenchmarks\n\nThe functions of `go test -bench . ./bench/` (BenchmarkMicro), run by RunMicro as testing.Benchmark would.\n\n")
		p("| benchmark | ns/op | MB/s | B/op | allocs/op |\n|---|--:|--:|--:|--:|\n")
		for _, m := range r.Micro {
			mbs := "-"
			if m.MBPerSec > 0 {
				mbs = fmt.Sprintf("%.1f", m.MBPerSec)
			}
			p("| %s | %.1f | %s | %d | %d |\n", m.Name, m.NsPerOp, mbs, m.BytesPerOp, m.AllocsPerOp)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	return nil
}

func writeStageRow(p func(string, ...any), rate, name string, h *hdrhistogram.Histogram) {
	if h == nil {
		return
	}
	p("| %s | %s | %d |", rate, name, h.TotalCount())
	for _, v := range Summarize(h).Values() {
		p(" %s |", us(v))
	}
	p("\n")
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
