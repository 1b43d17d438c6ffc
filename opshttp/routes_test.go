package opshttp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/feed"
)

// newDetached returns an Engine (no sockets) of symbols, driven on its own goroutine, with
// its operator view served.
func newDetached(t *testing.T, symbols []string, rec feed.Recovery, cfg Config) (*driver, string) {
	t.Helper()
	h, err := feed.NewEngine(feed.Config{Topics: symbols, Templates: templates(t), Port: port, Recovery: rec})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler = h
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := drive(t, h)
	return d, serve(t, s)
}

// TestRoutes checks each route's answer, and that bad requests get a clear 4xx.
func TestRoutes(t *testing.T) {
	syms := []string{"SBER", "GAZP", "LKOH"}
	g := newGen(t)
	d, url := newDetached(t, syms, nil, Config{})
	d.send(g.levels(syms[:2], 30)...) // LKOH has no data: an empty book

	code, body := get(t, url+"/api/books")
	if code != 200 {
		t.Fatalf("/api/books: %d %s", code, body)
	}
	got, err := book.ReadDump(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/api/books is not a dump: %v\n%s", err, body)
	}
	want := append(g.dump("GAZP"), book.DumpBook{Symbol: "LKOH", Bids: []book.DumpLevel{}, Asks: []book.DumpLevel{}})
	want = append(want, g.dump("SBER")...)
	if diff := book.DiffDumps(got, want); diff != "" {
		t.Errorf("/api/books differs from the ground truth:\n%s", diff)
	}
	code, body = get(t, url+"/api/books/SBER")
	if code != 200 || strings.Count(body, "\n") != 1 {
		t.Fatalf("/api/books/SBER: %d %q", code, body)
	}
	one, err := book.ReadDump(strings.NewReader(body))
	if err != nil || book.DiffDumps(one, g.dump("SBER")) != "" {
		t.Errorf("/api/books/SBER: %v %s", err, body)
	}
	code, body = get(t, url+"/api/books?symbols=SBER,GAZP&depth=1")
	if d, _ := book.ReadDump(strings.NewReader(body)); code != 200 || len(d) != 2 || len(d[0].Bids) != 1 || len(d[1].Asks) != 1 {
		t.Errorf("/api/books?symbols=SBER,GAZP&depth=1: %d %s", code, body)
	}

	code, body = get(t, url+"/api/channels")
	var chans []ChannelView
	if err := json.Unmarshal([]byte(body), &chans); code != 200 || err != nil || len(chans) != 3 {
		t.Fatalf("/api/channels: %d %v %s", code, err, body)
	}
	for _, c := range chans {
		if c.State != "live" || c.Instruments != 1 {
			t.Errorf("channel %+v", c)
		}
	}
	code, body = get(t, url+"/")
	if code != 200 || !strings.Contains(body, `<script src="/static/app.js">`) || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("/: %d, want the page with its script and no external address:\n%s", code, body)
	}
	for _, f := range []string{"app.js", "style.css"} {
		code, body = get(t, url+"/static/"+f)
		if code != 200 || len(body) < 1000 || strings.Contains(body, "https://") {
			t.Errorf("/static/%s: %d, %d bytes", f, code, len(body))
		}
	}

	var many []string
	for i := range maxWatched + 1 {
		many = append(many, fmt.Sprintf("S%d", i))
	}
	for _, c := range []struct {
		method, path string
		code         int
		says         string
	}{
		{"GET", "/api/books/NOPE", 404, "not followed"},
		{"GET", "/api/books/SB%20ER", 400, "not allowed"},
		{"GET", "/api/books/" + strings.Repeat("X", 40), 400, "longer than"},
		{"GET", "/api/books?depth=x", 400, "depth"},
		{"GET", "/api/books?depth=-1", 400, "depth"},
		{"GET", "/api/books?symbols=SBER,,GAZP", 400, "item 2: empty symbol"},
		{"GET", "/api/books/SBER?depth=1e3", 400, "depth"},
		{"GET", "/api/events?symbols=" + strings.Join(many, ","), 400, "more than 16 symbols"},
		{"GET", "/api/events?symbols=%3Cscript%3E", 400, "not allowed"},
		{"GET", "/nope", 404, "no page /nope"},
		{"GET", "/api", 404, "no page"},
		{"POST", "/metrics", 405, "GET"},
		{"DELETE", "/api/books", 405, "GET"},
	} {
		req, _ := http.NewRequest(c.method, url+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(e.Error, c.says) {
			t.Errorf("%s %s: %d %q, want %d saying %q", c.method, c.path, resp.StatusCode, e.Error, c.code, c.says)
		}
	}
}

// TestEventsStream reads the page's stream: conflated messages at the sampling rate, the
// watched books, and the symbol list in the first message only.
func TestEventsStream(t *testing.T) {
	syms := []string{"SBER", "GAZP"}
	g := newGen(t)
	d, url := newDetached(t, syms, nil, Config{Interval: 50 * time.Millisecond})
	d.send(g.levels(syms, 40)...)
	resp, err := http.Get(url + "/api/events?symbols=SBER,NOPE")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var msgs []message
	start := time.Now()
	for len(msgs) < 4 && sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var m struct {
			message
			Books []struct {
				Symbol string
				Bids   [][3]any
				Last   *tradeView
			}
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if len(msgs) == 0 && !slices.Equal(m.Symbols, []string{"GAZP", "SBER"}) {
			t.Errorf("first message's symbols %v", m.Symbols)
		}
		if len(msgs) > 0 && m.Symbols != nil {
			t.Errorf("message %d repeats the symbol list", len(msgs))
		}
		if len(m.Books) > 0 {
			b := m.Books[0]
			want := g.dump("SBER")[0]
			if b.Symbol != "SBER" || len(b.Bids) != min(10, len(want.Bids)) || b.Bids[0][0] != want.Bids[0].Price {
				t.Errorf("book %+v, want %+v", b, want)
			}
		}
		if len(m.Books) > 1 {
			t.Errorf("books %+v: NOPE is not followed", m.Books)
		}
		msgs = append(msgs, m.message)
	}
	if len(msgs) < 4 {
		t.Fatalf("%d messages: %v", len(msgs), sc.Err())
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("4 messages took %v at a 50ms interval", el)
	}
}

// FuzzParseSymbolList: any input gives symbols that are valid, distinct and at most max,
// that parse again to themselves, or an error; never a panic.
func FuzzParseSymbolList(f *testing.F) {
	for _, s := range []string{"", "SBER", "SBER,GAZP", " SBER , GAZP ,SBER", "A,,B", "SU26238RMFS4,USD000UTSTOM", "<x>", strings.Repeat("Z", 33), "a.b-c_d+e/f:g@h#i", ",", "\x00"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max%20 + 1
		if max < 1 {
			max = -max + 1
		}
		out, err := ParseSymbolList(s, max)
		if err != nil {
			if out != nil {
				t.Fatalf("%q: error %v with symbols %q", s, err, out)
			}
			return
		}
		if len(out) > max {
			t.Fatalf("%q: %d symbols, max %d", s, len(out), max)
		}
		seen := map[string]bool{}
		for _, sym := range out {
			if checkSymbol(sym) != nil || seen[sym] || strings.ContainsAny(sym, ", \t") {
				t.Fatalf("%q: bad or repeated symbol %q in %q", s, sym, out)
			}
			seen[sym] = true
		}
		again, err := ParseSymbolList(strings.Join(out, ","), max)
		if err != nil || !slices.Equal(again, out) {
			t.Fatalf("%q: %q parses again to %q, %v", s, out, again, err)
		}
	})
}
