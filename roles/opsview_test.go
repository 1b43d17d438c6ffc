package roles

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"fastfeed/book"
	"fastfeed/bus"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
	"fastfeed/mcast"
	"fastfeed/md"
	"fastfeed/opshttp"
)

// These tests open TCP sockets on 127.0.0.1 only (HTTP, NATS, FIX): no multicast.

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitLog waits until the log holds want.
func waitLog(t *testing.T, log *syncBuffer, want string, done <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), want); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("ended before %q: %v\n%s", want, err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, log.String())
		}
	}
}

func loopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrapeMetrics reads /metrics and parses it with expfmt.
func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
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

// metric returns the value of the one sample of name whose labels include kv.
func metric(t *testing.T, fams map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Errorf("/metrics has no %s", name)
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(kv); i += 2 {
			ok := false
			for _, l := range m.Label {
				ok = ok || l.GetName() == kv[i] && l.GetValue() == kv[i+1]
			}
			if !ok {
				continue next
			}
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	t.Errorf("/metrics has no %s%v", name, kv)
	return -1
}

func readBooks(t *testing.T, s string) book.Dump {
	t.Helper()
	d, err := book.ReadDump(strings.NewReader(s))
	if err != nil {
		t.Fatalf("%v: %q", err, s)
	}
	return d
}

// TestIngestHTTP: fastfeed ingest --capture --http --linger serves what it dumps: the
// books of /api/books are --dump-books byte for byte, /api/channels has each MOEX
// connection with the counters of --stats-out, /metrics the counters per connection and
// per line; /healthz is 200 for a clean capture, 503 naming the book that a loss on both
// lines left stale.
func TestIngestHTTP(t *testing.T) {
	for _, loss := range []bool{false, true} {
		dir := t.TempDir()
		capture := filepath.Join(dir, "moex.pcapng")
		writeIngestCapture(t, capture, loss)
		books, stats := filepath.Join(dir, "books"), filepath.Join(dir, "stats")
		addr := loopbackAddr(t)
		base := "http://" + addr
		ctx, cancel := context.WithCancel(context.Background())
		var log syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- Ingest(ctx, []string{"--moex-config", moexConfig, "--market", "FOND", "--capture", capture,
				"--dump-books", books, "--stats-out", stats, "--http", addr, "--linger", "1m"}, discard{}, &log)
		}()
		waitLog(t, &log, "ingest lingering", done)
		dump, err := os.ReadFile(books)
		if err != nil {
			t.Fatal(err)
		}
		var st IngestStats
		if b, err := os.ReadFile(stats); err != nil || json.Unmarshal(b, &st) != nil {
			t.Fatalf("stats: %v", err)
		}
		if code, body := httpGet(t, base+"/api/books"); code != 200 || body != string(dump) {
			t.Errorf("loss %v: /api/books %d\n%s\nwant --dump-books\n%s", loss, code, body, dump)
		}
		want := readBooks(t, string(dump))
		if code, body := httpGet(t, base+"/api/books/SBER"); code != 200 || book.DiffDumps(readBooks(t, body), want[len(want)-1:]) != "" {
			t.Errorf("/api/books/SBER: %d %s", code, body)
		}
		code, body := httpGet(t, base+"/api/channels")
		var chans []opshttp.ChannelView
		if err := json.Unmarshal([]byte(body), &chans); code != 200 || err != nil || len(chans) != len(st.Channels) {
			t.Fatalf("/api/channels: %d %v %s (want %d connections)", code, err, body, len(st.Channels))
		}
		for _, c := range chans {
			s, ok := st.Channels[c.Channel]
			if !ok || c.Gaps != s.Gaps || c.Missing != s.Missed || c.Duplicates != s.Duplicates || c.RecoveredAB != s.RecoveredAB ||
				len(c.Lines) != 2 || c.Lines[0] != s.Datagrams[0] || c.Lines[1] != s.Datagrams[1] {
				t.Errorf("/api/channels %+v, --stats-out %+v", c, s)
			}
			if c.Channel == "OLR" && (c.Instruments != st.Books || c.Stale != st.Stale) {
				t.Errorf("OLR %+v: books %d, stale %d", c, st.Books, st.Stale)
			}
		}
		fams := scrapeMetrics(t, base)
		role := []string{"role", "ingest"}
		if v := metric(t, fams, "fastfeed_datagrams_total", role...); v != float64(st.Engine.Datagrams) || v == 0 {
			t.Errorf("fastfeed_datagrams_total %v, --stats-out %d", v, st.Engine.Datagrams)
		}
		if v := metric(t, fams, "fastfeed_trades_total", role...); v != float64(st.Engine.Trades) {
			t.Errorf("fastfeed_trades_total %v, --stats-out %d", v, st.Engine.Trades)
		}
		for name, s := range st.Channels {
			if v := metric(t, fams, "fastfeed_gaps_total", "channel", name); v != float64(s.Gaps) {
				t.Errorf("fastfeed_gaps_total{channel=%q} %v, --stats-out %d", name, v, s.Gaps)
			}
			if v := metric(t, fams, "fastfeed_channel_line_datagrams_total", "channel", name, "line", "A"); v != float64(s.Datagrams[0]) {
				t.Errorf("line A datagrams of %s: %v, --stats-out %d", name, v, s.Datagrams[0])
			}
		}
		if v := metric(t, fams, "fastfeed_stale_books", role...); v != float64(st.Stale) {
			t.Errorf("fastfeed_stale_books %v, --stats-out %d", v, st.Stale)
		}
		code, body = httpGet(t, base+"/healthz")
		switch {
		case !loss && (code != 200 || body != "ok\n" || st.Stale != 0):
			t.Errorf("clean capture: /healthz %d %q (stale %d)", code, body, st.Stale)
		case loss && (code != 503 || !strings.Contains(body, `"stale":["GAZP"]`) || !strings.Contains(body, "1 stale book(s) on OLR")):
			t.Errorf("GAZP stale: /healthz %d %q", code, body)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest: %v", err)
		}
		if _, err := http.Get(base + "/healthz"); err == nil {
			t.Error("the HTTP view outlived ingest")
		}
	}
}

// fakeEngine is what a natsbus.Publisher needs of an engine: its events and Do on one
// goroutine at a time.
type fakeEngine struct{ mu sync.Mutex }

func (f *fakeEngine) Do(ctx context.Context, fn func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
	return nil
}

// TestGatewayHTTP: fastfeed gateway --http, fed from an embedded NATS server by a
// publisher: /api/books equals what its FIX client rebuilt and the ground truth,
// /api/channels counts the instruments, /metrics (parsed with expfmt) counts the NATS
// messages and shows one FIX and one NATS session, the inbound queue, the last trade on
// the page's stream; /healthz turns 503 naming a book the publisher says is stale, and
// 200 when it is fresh again.
func TestGatewayHTTP(t *testing.T) {
	srv, err := natsbus.StartServer(natsbus.ServerConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := natsbus.ConnConfig{URL: srv.URL()}.Connect(natsbus.PublisherOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	chOf := func(s string) string {
		return mcast.ChannelName(netip.AddrPortFrom(mcast.DefaultMapping().Group(s), 30001))
	}
	eng := &fakeEngine{}
	pub, err := natsbus.NewPublisher(natsbus.PublisherConfig{Conn: nc, Engine: eng, ChannelOf: chOf, SnapshotEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()

	httpAddr, fixAddr := loopbackAddr(t), loopbackAddr(t)
	base := "http://" + httpAddr
	var log syncBuffer
	done := make(chan error, 1)
	gctx, gcancel := context.WithCancel(ctx)
	go func() {
		done <- Gateway(gctx, []string{"--nats", srv.URL(), "--serve-fix", fixAddr, "--http", httpAddr}, discard{}, &log)
	}()
	waitLog(t, &log, "gateway started", done)
	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz before any data: %d %s", code, body)
	}

	// The data: books of three instruments, trades, published as a feed handler would.
	syms := []string{"GAZP", "LKOH", "SBER"}
	truth := map[string]*book.MBP{}
	rpt := map[string]uint32{}
	event := func(kind feed.EventKind, sym string, e *md.Entry) {
		eng.mu.Lock()
		defer eng.mu.Unlock()
		b := truth[sym]
		if b == nil {
			b, _ = book.NewMBP(book.Config{PriceExp: -2})
			truth[sym] = b
		}
		if e != nil {
			rpt[sym]++
			e.Symbol, e.RptSeq = []byte(sym), rpt[sym]
			if e.Type != md.Trade {
				u := book.Update{Action: book.Action(e.Action), Type: book.EntryBid, Price: e.Price.Mantissa, Size: e.Size.Mantissa, Orders: int64(e.Orders)}
				if e.Type == md.Offer {
					u.Type = book.EntryOffer
				}
				if err := b.Apply(u); err != nil {
					t.Fatal(err)
				}
			}
			b.SetRptSeq(int64(rpt[sym]))
		}
		pub.OnEvent(&feed.Event{Kind: kind, Symbol: sym, Entry: e, Book: b})
	}
	for i := range 30 {
		for j, sym := range syms {
			px := int64(10000 + 1000*j + i%7)
			switch {
			case i < 8:
				event(feed.EventBook, sym, &md.Entry{Action: md.New, Type: md.Bid, Price: md.Dec(px, -2), Size: md.Dec(100, 0), Orders: 1})
				event(feed.EventBook, sym, &md.Entry{Action: md.New, Type: md.Offer, Price: md.Dec(px+100, -2), Size: md.Dec(50, 0), Orders: 1})
			case i%4 == 0:
				event(feed.EventTrade, sym, &md.Entry{Action: md.New, Type: md.Trade, Price: md.Dec(px, -2), Size: md.Dec(int64(i), 0)})
			default:
				event(feed.EventBook, sym, &md.Entry{Action: md.Change, Type: md.Bid, Price: md.Dec(10000+1000*int64(j)+int64(i%7), -2),
					Size: md.Dec(int64(100+i), 0), Orders: 1})
			}
		}
	}
	var want book.Dump
	eng.mu.Lock()
	for _, s := range syms {
		want = append(want, book.DumpOf(s, truth[s]))
	}
	eng.mu.Unlock()

	// The gateway's books equal the ground truth; a FIX client that subscribes to
	// everything (the instruments the gateway knows) sees the same.
	var got, fix book.Dump
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body := httpGet(t, base+"/api/books")
		got = readBooks(t, body)
		diff := book.DiffDumps(got, want)
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway /api/books vs ground truth:\n%s", diff)
		}
	}
	cl, err := bus.NewClient(bus.ClientConfig{Connect: fixAddr, SenderCompID: "OMS-OPS", Username: "equities", Password: "equities"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Subscribe("ops1", "*"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		cl.Books(func(b *bus.Books) { fix = b.Dump() })
		diff := book.DiffDumps(fix, got)
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the FIX client's books vs the gateway's /api/books:\n%s", diff)
		}
	}
	code, body := httpGet(t, base+"/api/books/SBER?depth=1")
	if one := readBooks(t, body); code != 200 || len(one) != 1 || len(one[0].Bids) != 1 || one[0].Bids[0] != want[2].Bids[0] {
		t.Errorf("/api/books/SBER?depth=1: %d %s", code, body)
	}
	code, body = httpGet(t, base+"/api/channels")
	var chans []opshttp.ChannelView
	if err := json.Unmarshal([]byte(body), &chans); code != 200 || err != nil {
		t.Fatalf("/api/channels: %d %v %s", code, err, body)
	}
	n := 0
	for _, c := range chans {
		n += c.Instruments
		if c.Stale != 0 || c.State != "live" || c.Channel != chOf(syms[0]) && c.Channel != chOf(syms[1]) && c.Channel != chOf(syms[2]) {
			t.Errorf("/api/channels: %+v", c)
		}
	}
	if n != 3 {
		t.Errorf("/api/channels counts %d instruments: %s", n, body)
	}
	fams := scrapeMetrics(t, base)
	role := []string{"role", "gateway"}
	for _, c := range []struct {
		name string
		kv   []string
		ok   func(float64) bool
	}{
		{"fastfeed_messages_total", nil, func(v float64) bool { return v >= 3 }},
		{"fastfeed_entries_total", nil, func(v float64) bool { return v > 0 }},
		{"fastfeed_instruments", nil, func(v float64) bool { return v == 3 }},
		{"fastfeed_synchronised", nil, func(v float64) bool { return v == 3 }},
		{"fastfeed_stale_books", nil, func(v float64) bool { return v == 0 }},
		{"fastfeed_parse_errors_total", nil, func(v float64) bool { return v == 0 }},
		{"fastfeed_fix_sessions", nil, func(v float64) bool { return v == 1 }},
		{"fastfeed_nats_sessions", nil, func(v float64) bool { return v == 1 }},
		{"fastfeed_nats_session_state", []string{"session", "consumer", "state", "connected"}, func(v float64) bool { return v == 1 }},
		{"fastfeed_queue_capacity", []string{"queue", "nats inbound"}, func(v float64) bool { return v == natsbus.DefaultInbound }},
		{"fastfeed_channel_instruments", []string{"channel", chOf("SBER")}, func(v float64) bool { return v >= 1 }},
	} {
		if v := metric(t, fams, c.name, append(role, c.kv...)...); !c.ok(v) {
			t.Errorf("%s%v = %v", c.name, c.kv, v)
		}
	}
	if code, body := httpGet(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	// The page's stream shows SBER's ladder with its last trade (i = 28: 120.00 for 28).
	resp, err := http.Get(base + "/api/events?symbols=SBER")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var ev struct {
		Role  string
		Books []struct {
			Symbol string
			Bids   [][3]any
			Last   *struct {
				Price, Size string
				Count       uint64
			}
		}
	}
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	resp.Body.Close()
	if ev.Role != "gateway" || len(ev.Books) != 1 || ev.Books[0].Last == nil || ev.Books[0].Last.Price != "120" ||
		ev.Books[0].Last.Size != "28" || ev.Books[0].Last.Count != 6 || len(ev.Books[0].Bids) != len(want[2].Bids) {
		t.Errorf("the page's stream: %+v", ev)
	}

	// A stale book: 503 naming it; fresh again: 200.
	health := func(want int, what string) {
		t.Helper()
		var code int
		var body string
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if code, body = httpGet(t, base+"/healthz"); code == want && strings.Contains(body, what) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz: %d %q, want %d with %q", code, body, want, what)
			}
		}
	}
	event(feed.EventStale, "GAZP", nil)
	health(503, `"stale":["GAZP"]`)
	if v := metric(t, scrapeMetrics(t, base), "fastfeed_stale_books", role...); v != 1 {
		t.Errorf("fastfeed_stale_books with GAZP stale: %v", v)
	}
	event(feed.EventFresh, "GAZP", nil)
	health(200, "ok")

	gcancel()
	if err := <-done; err != nil {
		t.Errorf("gateway: %v\n%s", err, log.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the HTTP view outlived the gateway")
	}
	// Off by default.
	var quiet syncBuffer
	if err := Gateway(ctx, []string{"--nats", srv.URL(), "--serve-fix", "127.0.0.1:0", "--duration", "100ms"}, discard{}, &quiet); err != nil ||
		!strings.Contains(quiet.String(), "gateway started") || strings.Contains(quiet.String(), "operator HTTP view") {
		t.Errorf("gateway without --http: %v\n%s", err, quiet.String())
	}
}
