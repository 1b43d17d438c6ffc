package bench

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"time"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH     = 900, 540
	marginL, marginR = 80, 250
	marginT, marginB = 50, 70
	innerW, innerH   = plotW - marginL - marginR, plotH - marginT - marginB
	minDecadesX      = 3 // the x axis shows at least 0% .. 99.9%
)

// Palette gives the curves of one rate one color, handler and baseline alike.
var Palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// WriteSVG draws curves as an HdrHistogram latency-percentile plot: x is the percentile on
// the log scale of 1/(1-p) (0%, 90%, 99%, 99.9%, ...), y the latency in microseconds on
// a log scale. Curves with no points are listed in the legend only.
func WriteSVG(w io.Writer, title string, curves []Curve) error {
	bw := bufio.NewWriter(w)
	xMax := float64(minDecadesX)
	yMin, yMax := math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		for _, p := range c.Points {
			xMax = max(xMax, xOf(p.Percentile))
			v := usOf(p.Value)
			yMin, yMax = min(yMin, v), max(yMax, v)
		}
	}
	xMax = math.Ceil(xMax)
	if math.IsInf(yMin, 1) {
		yMin, yMax = 1, 1000
	}
	lo, hi := math.Floor(math.Log10(max(yMin, 0.1))), math.Ceil(math.Log10(max(yMax, 0.1)))
	if hi <= lo {
		hi = lo + 1
	}
	px := func(x float64) float64 { return marginL + x/xMax*innerW }
	py := func(v float64) float64 {
		return marginT + innerH - (math.Log10(max(v, math.Pow(10, lo)))-lo)/(hi-lo)*innerH
	}

	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(bw, `<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(title))
	// Grid and x labels: one per decade of 1/(1-p).
	for d := 0.0; d <= xMax; d++ {
		x := px(d)
		fmt.Fprintf(bw, `<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, marginT, x, marginT+innerH)
		fmt.Fprintf(bw, `<text class="xtick" x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, marginT+innerH+18, percentileLabel(d))
	}
	for e := lo; e <= hi; e++ {
		y := py(math.Pow(10, e))
		fmt.Fprintf(bw, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y, marginL+innerW, y)
		fmt.Fprintf(bw, `<text class="ytick" x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y+4, usLabel(math.Pow(10, e)))
	}
	fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", marginL, marginT, innerW, innerH)
	fmt.Fprintf(bw, `<text x="%d" y="%d" text-anchor="middle">percentile (log scale of 1/(1-p))</text>`+"\n", marginL+innerW/2, plotH-20)
	fmt.Fprintf(bw, `<text transform="translate(20 %d) rotate(-90)" text-anchor="middle">latency, µs (log scale)</text>`+"\n", marginT+innerH/2)
	for i, c := range curves {
		color := c.Color
		if color == "" {
			color = Palette[i%len(Palette)]
		}
		dash := ""
		if c.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		if len(c.Points) > 0 {
			fmt.Fprintf(bw, `<polyline class="curve" fill="none" stroke="%s" stroke-width="2"%s points="`, color, dash)
			for j, p := range c.Points {
				if j > 0 {
					bw.WriteByte(' ')
				}
				fmt.Fprintf(bw, "%.1f,%.1f", px(xOf(p.Percentile)), py(usOf(p.Value)))
			}
			bw.WriteString("\"/>\n")
		}
		ly := marginT + 10 + i*20
		lx := marginL + innerW + 15
		fmt.Fprintf(bw, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+30, ly, color, dash)
		fmt.Fprintf(bw, `<text class="legend" x="%d" y="%d">%s</text>`+"\n", lx+36, ly+4, html.EscapeString(c.Label))
	}
	bw.WriteString("</svg>\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench: write svg: %w", err)
	}
	return nil
}

// xOf maps a percentile to decades of 1/(1-p): 90% -> 1, 99% -> 2.
func xOf(percentile float64) float64 {
	if percentile >= 100 {
		return 7
	}
	return math.Log10(1 / (1 - percentile/100))
}

func usOf(d time.Duration) float64 { return float64(d) / 1e3 }

// percentileLabel names decade d of the x axis: 0%, 90%, 99%, 99.9%, ...
func percentileLabel(d float64) string {
	if d == 0 {
		return "0%"
	}
	p := 100 * (1 - math.Pow(10, -d))
	return fmt.Sprintf("%.*f%%", max(0, int(d)-2), p)
}

func usLabel(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%g", v)
	}
	return fmt.Sprintf("%.0f", v)
}
