package opshttp

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"fastfeed/bus/natsbus"
	"fastfeed/feed"
)

// scrape fetches and parses /metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value returns the sum of a family's samples (counter, gauge or histogram count) whose
// labels include the given pairs.
func value(fams map[string]*dto.MetricFamily, name string, kv ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(kv); i += 2 {
			ok := false
			for _, l := range m.Label {
				if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
					ok = true
				}
			}
			if !ok {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

// TestMetricsWhileTrafficFlows scrapes /metrics while a publisher and a handler run with
// injected loss: the counters move between scrapes, the per-channel counters add up to the
// handler's, the gauges and histograms are there, and after the data the counters equal
// what --stats-out would write.
func TestMetricsWhileTrafficFlows(t *testing.T) {
	sys := startSystem(t, systemConfig{instruments: 8, rate: 4000, duration: 3 * time.Second,
		inject: feed.Inject{Loss: 0.01, Seed: 3}})
	var scrapes []map[string]*dto.MetricFamily
	for range 3 {
		time.Sleep(700 * time.Millisecond)
		scrapes = append(scrapes, scrape(t, sys.url))
	}
	for _, name := range []string{"fastfeed_datagrams_total", "fastfeed_messages_total", "fastfeed_latency_seconds"} {
		var prev float64
		for i, f := range scrapes {
			v, ok := value(f, name, "role", "feed")
			if !ok {
				t.Fatalf("scrape %d has no %s", i, name)
			}
			if i > 0 && v <= prev {
				t.Errorf("%s did not move between scrapes %d and %d: %v then %v", name, i-1, i, prev, v)
			}
			prev = v
		}
	}
	last := scrapes[len(scrapes)-1]
	for _, name := range []string{"fastfeed_open_holes", "fastfeed_stale_books", "fastfeed_instruments", "fastfeed_uptime_seconds",
		"fastfeed_decode_errors_total", "fastfeed_kernel_drops_total", "fastfeed_filtered_total", "fastfeed_line_b_first_total"} {
		if _, ok := value(last, name); !ok {
			t.Errorf("no %s", name)
		}
	}
	if v, ok := value(last, "fastfeed_queue_capacity", "queue", "commands"); !ok || v != feed.QueueSize {
		t.Errorf("command queue capacity %v %v", v, ok)
	}
	if v, _ := value(last, "fastfeed_channel_instruments"); v != 8 {
		t.Errorf("channels' instruments add up to %v, want 8", v)
	}
	if f := last["fastfeed_latency_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM || len(f.Metric) != int(feed.NumStages) {
		t.Errorf("latency histograms: %v", f)
	}

	sys.truth(t)
	sys.settled(t)
	var st feed.Stats
	if err := sys.h.Do(context.Background(), func() { st = sys.h.Stats() }); err != nil {
		t.Fatal(err)
	}
	f := scrape(t, sys.url)
	for name, want := range map[string]uint64{"fastfeed_messages_total": st.Messages, "fastfeed_gaps_total": st.Gaps,
		"fastfeed_recovered_fix_total": st.RecoveredFIX, "fastfeed_missing_total": st.Missing, "fastfeed_stale_books": 0,
		"fastfeed_injected_loss_total": st.InjectedLoss, "fastfeed_channels": st.Channels} {
		if got, _ := value(f, name); got != float64(want) {
			t.Errorf("%s = %v, the handler's Stats say %d", name, got, want)
		}
	}
	if st.Gaps == 0 || st.RecoveredFIX == 0 {
		t.Errorf("1%% loss made no gap or no FIX recovery: %+v", st)
	}
	if n, _ := value(f, "fastfeed_gaps_total", "channel", ""); n != 0 {
		t.Error("a gap counter without a channel")
	}
	if got, _ := value(f, "fastfeed_channel_latency_seconds"); got == 0 {
		t.Error("no per-channel latency recorded")
	}
}

// TestReceiveNoAllocsWhileScraped: with a scrape of each kind in flight (queued on the
// handler's command queue) and a page watching books and trades, handing the handler
// datagrams allocates nothing; each scrape then completes with what was received.
func TestReceiveNoAllocsWhileScraped(t *testing.T) {
	syms := []string{"SBER", "GAZP", "LKOH"}
	g := newGen(t)
	h, err := feed.NewEngine(feed.Config{Topics: syms, Templates: templates(t), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Handler: h, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s)
	ds := g.levels(syms, 6000)
	i := 0
	now := int64(1)
	receive := func() {
		d := &ds[i]
		h.Receive(d.dst, d.buf, now)
		now += 1000
		i++
	}
	for range 600 {
		receive()
	}
	h.DoWork(now)

	// A page watches two books: the sampler subscribes to their trades. Poll (this
	// goroutine is the handler's) until a message shows a trade.
	resp, err := http.Get(url + "/api/events?symbols=SBER,GAZP")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for seen := false; !seen; {
		if time.Now().After(deadline) {
			t.Fatal("no message with a trade")
		}
		for range 30 {
			receive()
		}
		h.DoWork(now)
		select {
		case l := <-lines:
			seen = strings.Contains(l, `"last":{"price"`)
		case <-time.After(5 * time.Millisecond):
		}
	}

	for _, path := range []string{"/metrics", "/api/books", "/healthz", "/api/channels", "/api/books/SBER"} {
		done := make(chan string, 1)
		go func() {
			_, body := get(t, url+path)
			done <- body
		}()
		// Wait until the request waits on the handler's queue.
		for queued := false; !queued; {
			for _, q := range h.Queues() {
				if q.Name == "commands" && q.Len > 0 {
					queued = true
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never reached the handler's queue", path)
			}
			time.Sleep(time.Millisecond)
		}
		// 30 datagrams a run: every symbol's bids, asks and trades (an allocation in
		// 1 datagram of 9 shows), yet fewer runs than the HTTP goroutines' own.
		if a := testing.AllocsPerRun(40, func() {
			for range 30 {
				receive()
			}
		}); a != 0 {
			t.Errorf("%.2f allocations per 30 datagrams with %s in flight", a, path)
		}
		want := i
		for {
			h.DoWork(now)
			select {
			case body := <-done:
				if path == "/metrics" && !strings.Contains(body, "fastfeed_datagrams_total{role=\"feed\"} "+strconv.Itoa(want)) {
					t.Errorf("/metrics does not count the %d datagrams received", want)
				}
				goto next
			case <-time.After(time.Millisecond):
			}
		}
	next:
	}
}

// TestGrafanaDashboard: every metric docs/grafana-dashboard.json queries is one a handler
// serves, with --nats (or, for the publisher's panel, one pub serves: cmd/fastfeed's
// TestHTTPFlag).
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatal("docs/grafana-dashboard.json is not JSON")
	}
	g := newGen(t)
	// As feed --nats serves it: the publisher's counters and its connection.
	d, url := newDetached(t, []string{"SBER", "GAZP"}, nil, Config{FIXSessions: func() int { return 0 },
		Counters: func() any { return natsbus.PublisherStats{} },
		NATS:     func() []NATSSession { return []NATSSession{{Name: "publisher", State: "connected"}} }})
	d.send(g.levels([]string{"SBER", "GAZP"}, 20)...)
	fams := scrape(t, url)
	pub := map[string]bool{"fastfeed_incrementals_total": true, "fastfeed_max_lag_us": true, "fastfeed_retransmitted_total": true}
	names := regexp.MustCompile(`fastfeed_[a-z_]+`).FindAllString(string(b), -1)
	if len(names) < 15 {
		t.Fatalf("only %d metric references", len(names))
	}
	for _, n := range names {
		base := strings.TrimSuffix(n, "_bucket")
		if fams[base] == nil && !pub[n] {
			t.Errorf("the dashboard queries %s, which /metrics does not serve", n)
		}
	}
}
