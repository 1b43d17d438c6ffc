package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/internal/netns"
	"fastfeed/md"
)

func TestMain(m *testing.M) { netns.RunTests(m) }

func templates(t testing.TB) *fast.Templates {
	t.Helper()
	ts, err := fast.LoadFile(filepath.Join("..", "fixtures", "templates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// synthetic returns a histogram of the delays k*unit for k = 1..n.
func synthetic(n int, unit time.Duration) *hdrhistogram.Histogram {
	h := NewHistogram()
	for k := 1; k <= n; k++ {
		_ = h.RecordValue(int64(k) * int64(unit))
	}
	return h
}

// within reports whether got is want within HdrHistogram's 3 significant figures.
func within(got, want time.Duration) bool {
	d := float64(got-want) / float64(want)
	return d >= -1e-3 && d <= 1e-3
}

func TestSummarizeSyntheticDelays(t *testing.T) {
	for _, unit := range []time.Duration{time.Microsecond, 37 * time.Microsecond, time.Millisecond} {
		s := Summarize(synthetic(10000, unit))
		want := Summary{Count: 10000, P50: 5000 * unit, P90: 9000 * unit, P99: 9900 * unit, P999: 9990 * unit, P9999: 9999 * unit, Max: 10000 * unit}
		if s.Count != want.Count {
			t.Errorf("unit %v: count %d", unit, s.Count)
		}
		got, exp := s.Values(), want.Values()
		for i := range got {
			if !within(got[i], exp[i]) {
				t.Errorf("unit %v: %s = %v, want %v within 0.1%%", unit, SummaryColumns[i], got[i], exp[i])
			}
		}
	}
}

func TestWriteLatency(t *testing.T) {
	var l feed.Latencies
	for s := range l {
		l[s] = synthetic(1000, time.Duration(s+1)*time.Microsecond)
	}
	var b bytes.Buffer
	if err := WriteLatency(&b, &l); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if !strings.HasPrefix(lines[0], " Value\tPercentile\tTotalCount\t1/(1-Percentile)") {
		t.Fatalf("not an .hgrm: %q", lines[0])
	}
	// The .hgrm rows are in µs: the tick-to-handler histogram's last row is its max, 5000 µs.
	var rows, stages int
	for _, line := range lines[1:] {
		switch {
		case line == "" || strings.HasPrefix(line, "#[Mean") || strings.HasPrefix(line, "#[Max") ||
			strings.HasPrefix(line, "#[Buckets") || strings.HasPrefix(line, "#[Summary"):
		case strings.HasPrefix(line, "#["):
			stages++
			name, rest, ok := strings.Cut(strings.Trim(line, "#[]"), ":")
			f := strings.Split(rest, ",")
			if !ok || len(f) != 7 {
				t.Fatalf("summary line %q", line)
			}
			var stage feed.Stage = -1
			for s := feed.Stage(0); s < feed.NumStages; s++ {
				if s.String() == strings.TrimSpace(name) {
					stage = s
				}
			}
			p50, err := strconv.ParseFloat(strings.TrimSpace(f[0]), 64)
			if stage < 0 || err != nil || !within(time.Duration(p50*1e3), time.Duration(500*(int(stage)+1))*time.Microsecond) {
				t.Errorf("summary line %q: stage %v p50 %v", line, stage, p50)
			}
			if strings.TrimSpace(f[6]) != "1000" {
				t.Errorf("summary line %q: count %q", line, f[6])
			}
		default:
			rows++
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil || len(f) != 4 || v < 5 || v > 5005 {
				t.Errorf("hgrm row %q", line)
			}
		}
	}
	if rows < 20 || stages != int(feed.NumStages) {
		t.Errorf("%d rows, %d stage summaries\n%s", rows, stages, b.String())
	}
}

func TestCurveOf(t *testing.T) {
	c := CurveOf("x", synthetic(10000, time.Microsecond))
	if len(c.Points) < 10 {
		t.Fatalf("%d points", len(c.Points))
	}
	for i := 1; i < len(c.Points); i++ {
		p, q := c.Points[i-1], c.Points[i]
		if q.Percentile <= p.Percentile || q.Value < p.Value {
			t.Errorf("point %d %+v after %+v: not increasing", i, q, p)
		}
		if 1/(1-q.Percentile/100) > 10000*1.0001 {
			t.Errorf("point %+v beyond what 10000 values resolve", q)
		}
	}
	if last := c.Points[len(c.Points)-1]; last.Value != 10000*time.Microsecond && !within(last.Value, 10000*time.Microsecond) {
		t.Errorf("last point %+v, want the max", last)
	}
	if c := CurveOf("empty", NewHistogram()); len(c.Points) != 0 {
		t.Errorf("empty histogram: %d points", len(c.Points))
	}
}

func TestHeader(t *testing.T) {
	codec, err := md.NewCodec(templates(t))
	if err != nil {
		t.Fatal(err)
	}
	const sent = int64(1795372800123456789)
	inc, err := codec.AppendIncremental(make([]byte, 4), &md.Incremental{Header: md.Header{SeqNum: 70000, SendingTime: sent}})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := codec.AppendHeartbeat(make([]byte, 4), &md.Heartbeat{Header: md.Header{SeqNum: 3, SendingTime: 5}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		d    []byte
		tid  uint32
		sent int64
		ok   bool
	}{
		{"incremental", inc, 1, sent, true},
		{"heartbeat", hb, 5, 5, true},
		{"truncated time", inc[:len(inc)-5], 0, 0, false},
		{"preamble only", inc[:4], 0, 0, false},
		{"no template ID", []byte{0, 0, 0, 0, 0x80, 0x81, 0x81, 0x81}, 0, 0, false},
		{"empty", nil, 0, 0, false},
		{"overlong", append([]byte{0, 0, 0, 0, 0xc0, 0x81, 0x81}, bytes.Repeat([]byte{0x7f}, 12)...), 0, 0, false},
	} {
		tid, s, ok := Header(tc.d)
		if tid != tc.tid || s != tc.sent || ok != tc.ok {
			t.Errorf("%s: Header = %d, %d, %v; want %d, %d, %v", tc.name, tid, s, ok, tc.tid, tc.sent, tc.ok)
		}
	}
}

func FuzzHeader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0xc0, 0x81, 0x81, 0x19, 0x75, 0x1c, 0x41, 0x4a, 0x36, 0x07, 0x1a, 0x95, 0x80})
	f.Add([]byte{0, 0, 0, 0, 0xc0, 0x85})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, d []byte) {
		tid, sent, ok := Header(d)
		if !ok && (tid != 0 || sent != 0) {
			t.Errorf("failed read returned %d, %d", tid, sent)
		}
		if ok && sent < 0 {
			t.Errorf("negative SendingTime %d", sent)
		}
	})
}

// syntheticResults are two rates whose handler and baseline histograms are known: at
// 100k the handler's p99 is 1.2x the baseline's; at max the handler runs at half the
// baseline's rate.
func syntheticResults() *Results {
	r := &Results{Started: time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC), Took: 42 * time.Second,
		Env:      Env{GoVersion: "go1.26", OS: "linux", Arch: "amd64", NumCPU: 2, GOMAXPROCS: 4, CPU: "test CPU", Kernel: "6.1"},
		Duration: 5 * time.Second, Warmup: 500 * time.Millisecond, Instruments: 16,
		Micro: []MicroResult{{Name: "DecodeIncremental5", NsPerOp: 600, MBPerSec: 110}}}
	for _, rr := range []struct {
		rate       float64
		hRate, bRa float64
		hUnit      time.Duration
	}{{100000, 100000, 100000, 12 * time.Microsecond}, {0, 150000, 300000, 30 * time.Microsecond}} {
		var h, b Measurement
		h.Receiver, b.Receiver = "handler", "baseline"
		h.Sent, h.Entries, h.Received, h.Rate = 1000, 1500, 1000, rr.hRate
		b.Sent, b.Entries, b.Received, b.Rate = 1000, 1500, 990, rr.bRa
		for s := feed.Stage(0); s < feed.NumStages; s++ {
			h.Stages[s] = synthetic(1000, rr.hUnit/time.Duration(feed.NumStages-s))
		}
		h.Recv, h.Work = synthetic(1000, 2*time.Microsecond), synthetic(1000, 500*time.Nanosecond)
		b.Stages[feed.StageWire] = synthetic(1000, time.Microsecond)
		b.Stages[feed.StageTotal] = synthetic(1000, 10*time.Microsecond)
		b.Recv = synthetic(1000, 3*time.Microsecond)
		r.Rates = append(r.Rates, RateResult{Rate: rr.rate, Handler: h, Baseline: b})
	}
	return r
}

func TestTargets(t *testing.T) {
	ts := Targets(syntheticResults())
	if len(ts) != 3 || !ts[0].Measured || !ts[0].Met || !within(time.Duration(ts[0].Value*1e6), 1.2e6) {
		t.Errorf("p99 target %+v, want met at 1.2", ts[0])
	}
	if !ts[1].Measured || ts[1].Met || ts[1].Value != 0.5 {
		t.Errorf("rate target %+v, want not met at 0.5", ts[1])
	}
	// At max the handler's p99 is 3x the baseline's (30 µs units against 10).
	if !ts[2].Measured || ts[2].Met || !strings.HasPrefix(ts[2].Name, "p99 tick-to-handler <= 1.5x the baseline's p99 at max") ||
		!within(time.Duration(ts[2].Value*1e6), 3e6) {
		t.Errorf("max p99 target %+v, want not met at 3", ts[2])
	}
	if ts := Targets(&Results{}); ts[0].Measured || ts[1].Measured || ts[2].Measured {
		t.Errorf("targets of no runs: %+v", ts)
	}
}

// In busy-poll mode the targets are the p50 ratios at 10k and 100k and the kernel
// rx->decoded p50.
func TestTargetsBusyPoll(t *testing.T) {
	r := syntheticResults()
	r.BusyPoll, r.NoWarm = true, true
	ts := Targets(r)
	if len(ts) != 4 {
		t.Fatalf("%d targets: %+v", len(ts), ts)
	}
	if ts[0].Measured || !strings.HasPrefix(ts[0].Name, "p50 tick-to-handler <= 1.1x the baseline's p50 at 10k") {
		t.Errorf("10k p50 target %+v, want not measured (no 10k run)", ts[0])
	}
	if !ts[1].Measured || ts[1].Met || !within(time.Duration(ts[1].Value*1e6), 1.2e6) {
		t.Errorf("100k p50 target %+v, want not met at 1.2", ts[1])
	}
	// The decode stage: the worst p50 of the paced runs, here only 100k.
	dec := ts[2]
	wantDec := float64(r.Rates[0].Handler.Stages[feed.StageDecode].ValueAtQuantile(50)) / 1e3
	if !dec.Measured || dec.Unit != "µs" || dec.Value != wantDec || dec.Met != (wantDec <= 5) {
		t.Errorf("decode target %+v, want %.2f µs", dec, wantDec)
	}
	if v := dec.Verdict(); !strings.HasSuffix(v, " µs: met") && !strings.HasSuffix(v, " µs: not met") {
		t.Errorf("Verdict %q", v)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r, "fastfeed bench --busy-poll", "latency.svg"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "Receive mode: **busy poll**") || !strings.Contains(md.String(), "cache warming between datagrams is **off**") {
		t.Error("report does not name the busy-poll mode and the warming off")
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, syntheticResults(), "fastfeed bench --quick", "latency.svg"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"# fastfeed benchmark report", "`fastfeed bench --quick`", "test CPU, 2 CPUs", "one process (GOMAXPROCS 4)", "Pacing: sleep",
		"## Targets", "| met | 1.20x |", "| **not met** | 0.50x |",
		"## End to end", "| 100k | handler | 1000 | 1.50 | 1000 | 0 | 0 | 100000 | 6001 |",
		"| 100k | baseline | 1000 | 1.50 | 990 | 10 | 0 | 100000 | 5001 |",
		"## Handler / baseline", "| 100k | 1.00 | 1.20 | 1.20 | 1.20 | 1.20 | 1.20 | 1.20 |",
		"| max | 0.50 |",
		"## Handler stages", "| 100k | tick-to-handler | 1000 |", "| max | baseline send->kernel rx | 1000 |",
		"| 100k | - kernel rx->received | 1000 | 1000 |", "| 100k | - received->decoded | 1000 | 250.1 |",
		"| 100k | baseline kernel rx->received | 1000 | 1500 |", "in two parts: *kernel rx->received*",
		"![latency percentiles](latency.svg)", "| DecodeIncremental5 | 600.0 | 110.0 | 0 | 0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Every table row has as many cells as its header.
	var cols int
	for i, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(line, "|")
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("line %d has %d cells, its table %d: %q", i+1, n-1, cols-1, line)
		}
	}
	// 2 end to end, 1 ratio, the stages, the decode stage's 2 parts, the baseline's 2,
	// the receiving process's 2.
	if got, want := strings.Count(md, "| 100k | "), 2+1+int(feed.NumStages)+2+2+2; got != want {
		t.Errorf("%d rows for 100k, want %d", got, want)
	}
	// The decode stage's parts follow it.
	if i, j := strings.Index(md, "| 100k | kernel rx->decoded |"), strings.Index(md, "| 100k | - kernel rx->received |"); i < 0 || j < i {
		t.Error("kernel rx->received is not under kernel rx->decoded")
	}
}

func TestWriteSVG(t *testing.T) {
	var b bytes.Buffer
	curves := Curves(syntheticResults())
	curves = append(curves, Curve{Label: "no data"})
	if err := WriteSVG(&b, "test <plot>", curves); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName   xml.Name
		Polylines []struct {
			Stroke string `xml:"stroke,attr"`
			Dash   string `xml:"stroke-dasharray,attr"`
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
		Texts []struct {
			Class string `xml:"class,attr"`
			Body  string `xml:",chardata"`
		} `xml:"text"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if doc.XMLName.Local != "svg" || len(doc.Polylines) != 4 {
		t.Fatalf("root %q with %d polylines, want svg with 4", doc.XMLName.Local, len(doc.Polylines))
	}
	for i, pl := range doc.Polylines {
		if (pl.Dash != "") != (i%2 == 1) || pl.Stroke != Palette[i/2] {
			t.Errorf("curve %d: stroke %q dash %q", i, pl.Stroke, pl.Dash)
		}
		lastX, lastY := -1.0, 1e9
		for _, pt := range strings.Fields(pl.Points) {
			var x, y float64
			if _, err := fmt.Sscanf(pt, "%f,%f", &x, &y); err != nil {
				t.Fatalf("point %q: %v", pt, err)
			}
			if x < marginL || x > marginL+innerW || y < marginT || y > marginT+innerH {
				t.Errorf("curve %d: point %v,%v outside the plot area", i, x, y)
			}
			if x <= lastX || y > lastY {
				t.Errorf("curve %d: point %v,%v after %v,%v: percentile or latency decreasing", i, x, y, lastX, lastY)
			}
			lastX, lastY = x, y
		}
	}
	var xticks, legend []string
	for _, tx := range doc.Texts {
		switch tx.Class {
		case "xtick":
			xticks = append(xticks, tx.Body)
		case "legend":
			legend = append(legend, tx.Body)
		}
	}
	if got := strings.Join(xticks, " "); !strings.HasPrefix(got, "0% 90% 99% 99.9%") {
		t.Errorf("x ticks %q", got)
	}
	if got := strings.Join(legend, ","); got != "handler 100k msgs/s,baseline 100k msgs/s,handler max msgs/s,baseline max msgs/s,no data" {
		t.Errorf("legend %q", got)
	}
	if !strings.Contains(b.String(), "test &lt;plot&gt;") {
		t.Error("title not escaped")
	}
}

// TestRun runs one short end-to-end rate through the handler and the baseline.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var steps []string
	r, err := Run(ctx, Config{Templates: templates(t), Rates: []float64{20000}, Duration: 600 * time.Millisecond,
		Instruments: 4, NoMicro: true, Progress: func(s string) { steps = append(steps, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rates) != 1 || len(steps) != 2 || !strings.HasPrefix(steps[1], "[2/2] baseline at 20k") {
		t.Fatalf("%d rates, steps %q", len(r.Rates), steps)
	}
	h, b := r.Rates[0].Handler, r.Rates[0].Baseline
	for _, m := range []Measurement{h, b} {
		if m.Sent == 0 || m.Received == 0 || m.Received > m.Sent || m.Rate <= 0 || m.Total().TotalCount() == 0 {
			t.Errorf("%s: sent %d received %d rate %.0f latencies %d", m.Receiver, m.Sent, m.Received, m.Rate, m.Total().TotalCount())
		}
	}
	// Loopback inside the namespace loses nothing at this rate; a loss would show in gaps.
	if h.Received+h.Gaps < h.Sent {
		t.Errorf("handler: %d of %d applied with %d gaps", h.Received, h.Sent, h.Gaps)
	}
	for s := feed.Stage(0); s < feed.NumStages; s++ {
		if h.Stages[s].TotalCount() == 0 {
			t.Errorf("handler stage %v recorded nothing", s)
		}
	}
	dir := t.TempDir()
	if err := WriteReport(dir, r, "test"); err != nil {
		t.Fatal(err)
	}
}

// TestRunRounds runs a rate in two rounds, handler and baseline alternating, busy
// polling over shared sockets, the publisher spinning: four steps in that order, and the
// report says so.
func TestRunRounds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var steps []string
	r, err := Run(ctx, Config{Templates: templates(t), Rates: []float64{20000}, Duration: 600 * time.Millisecond, Rounds: 2,
		BusyPoll: true, SharedSockets: true, SpinPacing: true, Instruments: 4, NoMicro: true, Progress: func(s string) { steps = append(steps, s) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"[1/4] handler at 20k", "[2/4] baseline at 20k", "[3/4] handler at 20k", "[4/4] baseline at 20k"}
	if len(steps) != len(want) {
		t.Fatalf("steps %q", steps)
	}
	for i, s := range steps {
		if !strings.HasPrefix(s, want[i]) || !strings.HasSuffix(s, fmt.Sprintf("round %d of 2", i/2+1)) {
			t.Errorf("step %d: %q, want %q ... round %d of 2", i, s, want[i], i/2+1)
		}
	}
	h := r.Rates[0].Handler
	if h.Received+h.Gaps < h.Sent || h.Total().TotalCount() == 0 || h.Recv.TotalCount() != h.Work.TotalCount() {
		t.Errorf("handler: %d of %d applied, %d gaps, %d latencies, split %d/%d", h.Received, h.Sent, h.Gaps, h.Total().TotalCount(),
			h.Recv.TotalCount(), h.Work.TotalCount())
	}
	dir := t.TempDir()
	if err := WriteReport(dir, r, "test"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	b20 := r.Rates[0].Baseline
	for _, s := range []string{"Each rate ran **2 rounds**", "**shared sockets**", "Receive mode: **busy poll**", "Pacing: **spin**",
		"those of one message in 8 of each channel's are timed", "## The receiving process",
		fmt.Sprintf("| 20k | handler | %d | %d |", h.Faults, h.Preempted), fmt.Sprintf("| 20k | baseline | %d | %d |", b20.Faults, b20.Preempted)} {
		if !strings.Contains(string(b), s) {
			t.Errorf("report lacks %q", s)
		}
	}
}

// TestMeasurementMerge: a receiver's rounds add up: counts and times summed, the rate the
// sum's, the histograms merged.
func TestMeasurementMerge(t *testing.T) {
	run := func(received uint64, elapsed time.Duration, latencies ...int64) Measurement {
		m := Measurement{Receiver: "handler", Sent: received + 1, Entries: 2 * received, Received: received, Elapsed: elapsed,
			KernelDrops: 1, Gaps: 2, Faults: 3, Preempted: 4, Recv: NewHistogram()}
		for i := range m.Stages {
			m.Stages[i] = NewHistogram()
			for _, v := range latencies {
				_ = m.Stages[i].RecordValue(v)
			}
		}
		return m
	}
	m := run(1000, time.Second, 10_000, 20_000)
	o := run(3000, time.Second, 30_000)
	m.merge(&o)
	if m.Sent != 4002 || m.Entries != 8000 || m.Received != 4000 || m.Elapsed != 2*time.Second || m.Rate != 2000 ||
		m.KernelDrops != 2 || m.Gaps != 4 || m.Faults != 6 || m.Preempted != 8 || m.Work != nil {
		t.Errorf("merged %+v", m)
	}
	if n, max := m.Total().TotalCount(), m.Total().Max(); n != 3 || max < 29_000 || max > 31_000 {
		t.Errorf("merged histogram: %d values, max %d; want 3, about 30000", n, max)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Templates: templates(t), Rates: []float64{-1}},
		{Templates: templates(t), Duration: time.Second, Warmup: 2 * time.Second},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) accepted", cfg)
		}
	}
}

// BenchmarkMicro runs the microbenchmarks of Micro, as "fastfeed bench" does.
func BenchmarkMicro(b *testing.B) {
	ms, err := Micro(templates(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range ms {
		b.Run(m.Name, func(b *testing.B) {
			op, err := m.Setup()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(m.Bytes)
			b.ReportAllocs()
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEndToEnd runs 100k msgs/s for a second through the handler and the baseline;
// one op is one run. Reported: the rate received and the tick-to-receiver percentiles.
func BenchmarkEndToEnd(b *testing.B) {
	ts := templates(b)
	for _, recv := range []string{"handler", "baseline"} {
		b.Run(recv, func(b *testing.B) {
			cfg := Config{Templates: ts, Duration: time.Second}
			if err := cfg.defaults(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				m, err := measure(context.Background(), &cfg, 100000, 33000, recv)
				if err != nil {
					b.Fatal(err)
				}
				s := Summarize(m.Total())
				b.ReportMetric(m.Rate, "msgs/s")
				b.ReportMetric(float64(m.KernelDrops), "kernel_drops")
				b.ReportMetric(float64(s.P50)/1e3, "p50_µs")
				b.ReportMetric(float64(s.P99)/1e3, "p99_µs")
				b.ReportMetric(float64(s.P999)/1e3, "p99.9_µs")
			}
		})
	}
}
