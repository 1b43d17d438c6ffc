package bench

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/feed"
)

// MaxLatency is the top of the range of the package's histograms.
const MaxLatency = 10 * time.Second

// NewHistogram returns a latency histogram in nanoseconds, 1 ns to MaxLatency, with 3
// significant figures: the configuration of the handler's overall histograms.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(MaxLatency), 3)
}

// Summary is a latency distribution reduced to the figures the reports print.
type Summary struct {
	Count                      int64
	P50, P90, P99, P999, P9999 time.Duration
	Max                        time.Duration
}

// Summarize reduces h (nanoseconds) to a Summary.
func Summarize(h *hdrhistogram.Histogram) Summary {
	q := func(p float64) time.Duration { return time.Duration(h.ValueAtQuantile(p)) }
	return Summary{Count: h.TotalCount(), P50: q(50), P90: q(90), P99: q(99), P999: q(99.9), P9999: q(99.99),
		Max: time.Duration(h.Max())}
}

// Values returns p50, p90, p99, p99.9, p99.99 and max, in that order.
func (s Summary) Values() [6]time.Duration {
	return [6]time.Duration{s.P50, s.P90, s.P99, s.P999, s.P9999, s.Max}
}

// SummaryColumns names the columns of Values.
var SummaryColumns = [6]string{"p50", "p90", "p99", "p99.9", "p99.99", "max"}

// String prints the summary in microseconds.
func (s Summary) String() string {
	v := s.Values()
	out := ""
	for i, c := range SummaryColumns {
		out += fmt.Sprintf("%s %s µs  ", c, us(v[i]))
	}
	return out + fmt.Sprintf("count %d", s.Count)
}

// us formats d in microseconds with a precision that suits its size.
func us(d time.Duration) string {
	v := float64(d) / 1e3
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 1000:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// WriteHgrm writes h (nanoseconds) as an HdrHistogram percentile distribution in
// microseconds (.hgrm text, five ticks per half distance), the format of HdrHistogram's
// plotters.
func WriteHgrm(w io.Writer, h *hdrhistogram.Histogram) error {
	if _, err := h.PercentilesPrint(w, 5, 1000); err != nil {
		return fmt.Errorf("bench: write hgrm: %w", err)
	}
	return nil
}

// WriteLatency writes what "fastfeed feed --latency-out" writes: the handler's
// tick-to-handler distribution as .hgrm (microseconds), then a summary of every stage,
// on lines starting with '#' so that .hgrm readers skip them.
func WriteLatency(w io.Writer, l *feed.Latencies) error {
	if err := WriteHgrm(w, l[feed.StageTotal]); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "#[Summary, microseconds: stage, %s, count]\n", joinColumns()); err != nil {
		return fmt.Errorf("bench: write latency summary: %w", err)
	}
	for s := feed.Stage(0); s < feed.NumStages; s++ {
		if _, err := fmt.Fprintf(w, "#[%-18s %s]\n", s.String()+":", summaryFields(Summarize(l[s]))); err != nil {
			return fmt.Errorf("bench: write latency summary: %w", err)
		}
	}
	return nil
}

func joinColumns() string {
	out := ""
	for i, c := range SummaryColumns {
		if i > 0 {
			out += ", "
		}
		out += c
	}
	return out
}

func summaryFields(s Summary) string {
	out := ""
	for _, v := range s.Values() {
		out += fmt.Sprintf("%10.3f, ", float64(v)/1e3)
	}
	return out + fmt.Sprintf("%d", s.Count)
}

// Point is one point of a percentile curve.
type Point struct {
	Percentile float64       // 0 to 100, below 100
	Value      time.Duration // latency at that percentile
}

// Curve is a latency-percentile curve, as HdrHistogram's plotters draw it.
type Curve struct {
	Label  string
	Dashed bool // drawn dashed (the baselines)
	Color  string
	Points []Point
}

// CurveOf returns h's percentile distribution (five ticks per half distance) as a curve,
// up to the last percentile below 100 that the count resolves: 1/(1-p) <= count.
func CurveOf(label string, h *hdrhistogram.Histogram) Curve {
	c := Curve{Label: label}
	n := float64(h.TotalCount())
	for _, b := range h.CumulativeDistributionWithTicks(5) {
		if b.Quantile >= 100 || 1/(1-b.Quantile/100) > n || math.IsNaN(b.Quantile) {
			continue
		}
		c.Points = append(c.Points, Point{Percentile: b.Quantile, Value: time.Duration(b.ValueAt)})
	}
	if n > 0 {
		c.Points = append(c.Points, Point{Percentile: 100 * (1 - 1/max(n, 2)), Value: time.Duration(h.Max())})
	}
	return c
}
