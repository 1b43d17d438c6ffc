package opshttp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/feed"
)

// fakeSource is a Source whose state the test sets.
type fakeSource struct {
	mu     sync.Mutex
	st     State
	books  map[string]book.DumpBook
	err    error
	moving bool // each read counts one more datagram
}

func (f *fakeSource) Read(ctx context.Context, req Request) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.moving {
		f.st.Data++
	}
	if f.err != nil {
		return State{}, f.err
	}
	st := f.st
	st.At = time.Now()
	syms := req.Symbols
	var all []string
	for s := range f.books {
		all = append(all, s)
	}
	if req.All {
		syms = all
	}
	if req.List {
		st.Symbols = all
	}
	st.Books = nil
	for _, s := range dedup(syms) {
		if b, ok := f.books[s]; ok {
			if req.Depth > 0 {
				b.Bids, b.Asks = b.Bids[:min(req.Depth, len(b.Bids))], b.Asks[:min(req.Depth, len(b.Asks))]
			}
			st.Books = append(st.Books, b)
		}
	}
	return st, nil
}

func dedup(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	n := 0
	for i, x := range out {
		if i == 0 || x != out[n-1] {
			out[n] = x
			n++
		}
	}
	return out[:n]
}

type fakeCounters struct {
	Datagrams uint64 `json:"datagrams"`
	Trades    uint64 `json:"trades"`
	Books     int    `json:"books"`
}

// TestSourceRoutes: a process that is not a feed handler (a gateway, an ingest) served
// through a Source: the books as the Source copies them (all, by symbol, cut to a
// depth), the channels with their per-channel counters, the metrics (counters, per
// channel, queues, FIX and NATS sessions), and /healthz 503 for a stale book, a reason of
// the Source and no data, 200 when they clear.
func TestSourceRoutes(t *testing.T) {
	sber := book.DumpBook{Symbol: "SBER", RptSeq: 12, Bids: []book.DumpLevel{{Price: "101.25", Size: "300", Orders: 3}, {Price: "101.2", Size: "5", Orders: 1}},
		Asks: []book.DumpLevel{{Price: "101.3", Size: "50", Orders: 1}}}
	gazp := book.DumpBook{Symbol: "GAZP", RptSeq: 4, Bids: []book.DumpLevel{}, Asks: []book.DumpLevel{{Price: "150", Size: "10", Orders: 2}}}
	src := &fakeSource{moving: true, books: map[string]book.DumpBook{"SBER": sber, "GAZP": gazp}, st: State{
		Counters:   fakeCounters{Datagrams: 40, Trades: 7, Books: 2},
		PerChannel: []string{"gaps", "missing", "recovered_ab"},
		Channels: []ChannelView{{Channel: "OLR", State: "live", Next: 41, Instruments: 2, Gaps: 1, Missing: 2, RecoveredAB: 3, Lines: []uint64{30, 28}},
			{Channel: "TLR", State: "gap", Next: 9, Buffered: 2, Gaps: 4}},
		Queues:    []feed.QueueDepth{{Name: "reorder OLR", Len: 0, Cap: 64}, {Name: "reorder TLR", Len: 2, Cap: 64}},
		Last:      map[string]LastTrade{"SBER": {Price: "101.25", Size: "100", Count: 7}},
		Data:      40,
		WatchData: true,
	}}
	nats := []NATSSession{{Name: "consumer", State: "connected"}}
	s, err := New(Config{Role: "ingest", Source: src, FIXSessions: func() int { return 2 }, NATS: func() []NATSSession { return nats },
		NoDataAfter: 300 * time.Millisecond, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s)

	want := book.Dump{gazp, sber}
	var wantAll strings.Builder
	want.WriteTo(&wantAll)
	if code, body := get(t, url+"/api/books"); code != 200 || body != wantAll.String() {
		t.Errorf("/api/books: %d %q, want %q", code, body, wantAll.String())
	}
	if code, body := get(t, url+"/api/books/SBER?depth=1"); code != 200 ||
		body != `{"symbol":"SBER","rptseq":12,"stale":false,"bids":[["101.25","300",3]],"asks":[["101.3","50",1]]}`+"\n" {
		t.Errorf("/api/books/SBER?depth=1: %d %q", code, body)
	}
	if code, _ := get(t, url+"/api/books/LKOH"); code != 404 {
		t.Errorf("/api/books/LKOH: %d, want 404", code)
	}
	if code, body := get(t, url+"/api/books?symbols=SBER,LKOH"); code != 200 || !strings.HasPrefix(body, `{"symbol":"SBER"`) || strings.Count(body, "\n") != 1 {
		t.Errorf("/api/books?symbols=SBER,LKOH: %d %q", code, body)
	}
	code, body := get(t, url+"/api/channels")
	var chans []ChannelView
	if err := json.Unmarshal([]byte(body), &chans); code != 200 || err != nil || len(chans) != 2 || chans[0].Channel != "OLR" ||
		chans[0].RecoveredAB != 3 || len(chans[0].Lines) != 2 || chans[1].Buffered != 2 || chans[1].State != "gap" {
		t.Errorf("/api/channels: %d %v %s", code, err, body)
	}
	if code, body := get(t, url+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}

	fams := scrape(t, url)
	for _, c := range []struct {
		name string
		kv   []string
		want float64
	}{
		{"fastfeed_datagrams_total", nil, 40},
		{"fastfeed_trades_total", nil, 7},
		{"fastfeed_books", nil, 2},
		{"fastfeed_gaps_total", []string{"channel", "OLR"}, 1},
		{"fastfeed_gaps_total", []string{"channel", "TLR"}, 4},
		{"fastfeed_missing_total", []string{"channel", "OLR"}, 2},
		{"fastfeed_recovered_ab_total", []string{"channel", "OLR"}, 3},
		{"fastfeed_channel_line_datagrams_total", []string{"channel", "OLR", "line", "B"}, 28},
		{"fastfeed_channel_next_seq", []string{"channel", "TLR"}, 9},
		{"fastfeed_channel_open_hole", []string{"channel", "TLR"}, 1},
		{"fastfeed_channel_state", []string{"channel", "TLR", "state", "gap"}, 1},
		{"fastfeed_open_holes", nil, 1},
		{"fastfeed_queue_depth", []string{"queue", "reorder TLR"}, 2},
		{"fastfeed_queue_capacity", []string{"queue", "reorder TLR"}, 64},
		{"fastfeed_stale_books", nil, 0},
		{"fastfeed_fix_sessions", nil, 2},
		{"fastfeed_nats_sessions", nil, 1},
		{"fastfeed_nats_session_state", []string{"session", "consumer", "state", "connected"}, 1},
	} {
		kv := append([]string{"role", "ingest"}, c.kv...)
		if v, ok := value(fams, c.name, kv...); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.kv, v, ok, c.want)
		}
	}
	if fams["fastfeed_duplicates_total"] != nil {
		t.Error("a per-channel counter the Source does not keep is served")
	}

	// The page's stream: the watched book with its last trade, the channels, the counters.
	resp, err := http.Get(url + "/api/events?symbols=SBER")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var m message
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	resp.Body.Close()
	if len(m.Books) != 1 || m.Books[0].Symbol != "SBER" || m.Books[0].Last == nil || m.Books[0].Last.Price != "101.25" ||
		m.Books[0].Last.Count != 7 || len(m.Books[0].Bids) != 2 || m.Health != nil || len(m.Symbols) != 2 || m.Role != "ingest" {
		t.Errorf("event: %+v", m)
	}
	// The header's counters: the Source's, the per-channel ones added up, the stale books.
	if st, ok := m.Stats.(map[string]any); !ok || st["datagrams"] != 40.0 || st["gaps"] != 5.0 || st["recovered_ab"] != 3.0 ||
		st["stale_books"] != 0.0 || st["duplicates"] != nil {
		t.Errorf("event's stats: %#v", m.Stats)
	}

	health := func(wantCode int, wantReason string) {
		t.Helper()
		code, body := get(t, url+"/healthz")
		var h Health
		if code != wantCode || (wantCode != 200 && (json.Unmarshal([]byte(body), &h) != nil || !strings.Contains(h.Reason, wantReason))) {
			t.Errorf("/healthz: %d %q, want %d %q", code, body, wantCode, wantReason)
		}
	}
	set := func(fn func(st *State)) {
		src.mu.Lock()
		fn(&src.st)
		src.mu.Unlock()
	}
	set(func(st *State) { st.Stale = []string{"GAZP"}; st.Channels[0].Stale = 1 })
	health(503, "1 stale book(s) on OLR (1, live)")
	set(func(st *State) {
		st.Stale = nil
		st.Channels[0].Stale = 0
		st.Unhealthy = "NATS connection reconnecting"
	})
	health(503, "NATS connection reconnecting")
	nats = []NATSSession{{Name: "consumer", State: "reconnecting"}}
	if v, _ := value(scrape(t, url), "fastfeed_nats_sessions", "role", "ingest"); v != 0 {
		t.Errorf("fastfeed_nats_sessions with the connection away: %v", v)
	}
	set(func(st *State) { st.Unhealthy = "" })
	health(200, "")
	src.mu.Lock()
	src.moving = false
	src.mu.Unlock()
	time.Sleep(400 * time.Millisecond)
	health(503, "no data for")
	set(func(st *State) { st.WatchData = false }) // a capture read to its end
	health(200, "")
	src.mu.Lock()
	src.moving, src.st.WatchData = true, true
	src.mu.Unlock()
	health(200, "")
	src.mu.Lock()
	src.err = errors.New("consumer stopped")
	src.mu.Unlock()
	health(503, "the ingest does not answer: consumer stopped")
	if code, _ := get(t, url+"/api/books"); code != 503 {
		t.Errorf("/api/books with the Source away: %d", code)
	}
}
