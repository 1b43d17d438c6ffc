package opshttp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"fastfeed/book"
	"fastfeed/feed"
)

// chromium finds the browser scripts/deps.sh installs (Debian's chromium), or the one
// FASTFEED_CHROMIUM names.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FASTFEED_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FASTFEED_NO_BROWSER") != "" {
		t.Skip("FASTFEED_NO_BROWSER is set and no chromium is installed")
	}
	t.Fatal("no chromium: run scripts/deps.sh (apt-get install chromium), set FASTFEED_CHROMIUM, or FASTFEED_NO_BROWSER=1 to skip")
	return ""
}

// ladder is one ladder as the page shows it (window.fastfeedLadders in app.js).
type ladder struct {
	Symbol string   `json:"symbol"`
	Shown  bool     `json:"shown"`
	Stale  bool     `json:"stale"`
	Badge  bool     `json:"badge"`
	RptSeq int64    `json:"rptseq"`
	Bids   [][3]any `json:"bids"`
	Asks   [][3]any `json:"asks"`
}

func ladderOf(b book.DumpBook) ladder {
	l := ladder{Symbol: b.Symbol, Shown: true, Stale: b.Stale, Badge: b.Stale, RptSeq: b.RptSeq, Bids: [][3]any{}, Asks: [][3]any{}}
	for _, x := range b.Bids {
		l.Bids = append(l.Bids, [3]any{x.Price, x.Size, float64(x.Orders)})
	}
	for _, x := range b.Asks {
		l.Asks = append(l.Asks, [3]any{x.Price, x.Size, float64(x.Orders)})
	}
	return l
}

// TestBrowser drives the live page in headless Chromium while a publisher and a handler
// run: a burst of loss is recovered over "FIX" on every channel but one, whose recovery is
// refused. Once the publisher has stopped, the ladders the page shows for three instruments
// equal /api/books and the publisher's ground truth (depth 10), and the fourth shows its
// STALE badge, in its ladder and in the channel table. It saves a screenshot (to
// FASTFEED_SCREENSHOT too, when set: docs/screenshot.png is made so).
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	sys := startSystem(t, systemConfig{instruments: 12, rate: 3000, duration: 4 * time.Second,
		inject: feed.Inject{Burst: 200, BurstAt: 4000, Seed: 1}, refuse: "AAPL", hold: true})
	refused, _ := sys.p.ChannelOf("AAPL")
	var fresh []string
	for _, s := range sys.symbols {
		if c, _ := sys.p.ChannelOf(s); c != refused && len(fresh) < 3 {
			fresh = append(fresh, s)
		}
	}
	watched := append(append([]string{}, fresh...), "AAPL")

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1600, 1000))
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1600, 1000)); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", exe, err)
	}
	page := sys.url + "/?symbols=" + strings.Join(watched, ",")
	if err := chromedp.Do(timeout(bctx), chromedp.Navigate(page), chromedp.WaitVisible(`.ladder[data-rptseq]`)); err != nil {
		t.Fatalf("loading %s: %v", page, err)
	}

	sys.start() // the market opens with the page watching

	// While the data flows, the page keeps updating.
	t1 := eval[int64](t, bctx, `fastfeedUpdated()`)
	time.Sleep(time.Second)
	t2 := eval[int64](t, bctx, `fastfeedUpdated()`)
	if t2-t1 < 500 {
		t.Errorf("the page updated from t=%d to t=%d in a second", t1, t2)
	}

	truth := sys.truth(t)
	sys.settled(t)
	want := map[string]ladder{}
	for _, s := range fresh {
		b, ok := truth.Lookup(s)
		if !ok {
			t.Fatalf("no ground truth for %s", s)
		}
		want[s] = ladderOf(top(book.Dump{b}, pageDepth)[0])
	}
	var shown []ladder
	var api map[string]ladder
	var diff string
	for deadline := time.Now().Add(20 * time.Second); ; {
		shown = eval[[]ladder](t, bctx, `fastfeedLadders()`)
		_, body := get(t, sys.url+"/api/books?depth=10&symbols="+strings.Join(watched, ","))
		d, err := book.ReadDump(strings.NewReader(body))
		if err != nil {
			t.Fatalf("/api/books: %v", err)
		}
		api = map[string]ladder{}
		for _, b := range d {
			api[b.Symbol] = ladderOf(b)
		}
		diff = ""
		for i, l := range shown {
			switch {
			case i < len(fresh) && !reflect.DeepEqual(l, want[l.Symbol]):
				diff += fmt.Sprintf("%s shown:\n  %+v\nground truth:\n  %+v\n", l.Symbol, l, want[l.Symbol])
			case i < len(fresh) && !reflect.DeepEqual(l, api[l.Symbol]):
				diff += fmt.Sprintf("%s shown:\n  %+v\n/api/books:\n  %+v\n", l.Symbol, l, api[l.Symbol])
			case i == len(fresh) && (!l.Stale || !l.Badge || !api[l.Symbol].Stale):
				diff += fmt.Sprintf("%s (recovery refused) shown %+v, /api/books stale %v\n", l.Symbol, l, api[l.Symbol].Stale)
			}
		}
		if len(shown) != len(watched) {
			diff += fmt.Sprintf("%d ladders shown, want %d\n", len(shown), len(watched))
		}
		if diff == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if diff != "" {
		t.Errorf("the page's ladders:\n%s", diff)
	}
	for _, s := range fresh {
		if len(want[s].Bids) == 0 || len(want[s].Asks) == 0 {
			t.Errorf("%s has an empty side: the comparison proves little", s)
		}
	}

	// The channel table marks the refused channel stale, and the header says unhealthy.
	badges := eval[[]string](t, bctx, `[...document.querySelectorAll("#channels tr")].filter(r => r.querySelector(".badge.stale")).map(r => r.dataset.channel)`)
	health := eval[string](t, bctx, `document.getElementById("health").textContent`)
	if !reflect.DeepEqual(badges, []string{refused}) {
		t.Errorf("stale badges on channels %v, want %s", badges, refused)
	}
	if !strings.Contains(health, "stale") {
		t.Errorf("health shown %q", health)
	}
	if code, body := get(t, sys.url+"/healthz"); code != 503 || !strings.Contains(body, `"AAPL"`) {
		t.Errorf("/healthz %d %s", code, body)
	}

	png, err := chromedp.Run(timeout(bctx), chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "screenshot.png")
	if p := os.Getenv("FASTFEED_SCREENSHOT"); p != "" {
		out = p
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))

	// No price, size or order count is cut short, on a laptop-sized window or on a wall
	// screen, where the page scales up.
	const cut = `[...document.querySelectorAll(".ladder td, .ladder-head span")].filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)`
	if c := eval[[]string](t, bctx, cut); len(c) > 0 {
		t.Errorf("at 1600x1000, cut short: %q", c)
	}
	small := eval[float64](t, bctx, `parseFloat(getComputedStyle(document.querySelector(".ladder td")).fontSize)`)
	if err := chromedp.Do(timeout(bctx), chromedp.EmulateViewport(2560, 1440), chromedp.Sleep(time.Second)); err != nil {
		t.Fatal(err)
	}
	large := eval[float64](t, bctx, `parseFloat(getComputedStyle(document.querySelector(".ladder td")).fontSize)`)
	if large < small*1.3 {
		t.Errorf("at 2560x1440: ladder type %.1fpx, %.1fpx at 1600x1000", large, small)
	}
	if c := eval[[]string](t, bctx, cut); len(c) > 0 {
		t.Errorf("at 2560x1440, cut short: %q", c)
	}
	if png, err = chromedp.Run(timeout(bctx), chromedp.CaptureScreenshot()); err != nil {
		t.Fatal(err)
	}
	out = strings.TrimSuffix(out, ".png") + "-wall.png"
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
}

// timeout bounds one browser action (the browser's own context must have none).
func timeout(ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	context.AfterFunc(ctx, cancel)
	return ctx
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(timeout(ctx), chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}
