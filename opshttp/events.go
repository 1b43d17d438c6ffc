package opshttp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/md"
)

const (
	pageDepth     = 10               // levels a side the page shows
	maxWatched    = 16               // symbols one event stream may watch
	maxWatchedAll = 256              // symbols all streams together may watch
	recentWindow  = 5 * time.Second  // the page's "recent" latency curve
	writeTimeout  = 10 * time.Second // a stream client that takes no data this long is dropped
)

// lastTrade is the last trade of a watched symbol, written by the trade subscription on the
// handler's goroutine and read through Do.
type lastTrade struct {
	price, size md.Decimal
	n           uint64
}

// onTrade is the trade subscription's callback, on the handler's goroutine: it copies two
// numbers and allocates nothing.
func (s *Server) onTrade(ev *feed.Event) {
	if ev.Kind != feed.EventTrade || ev.Entry == nil {
		return
	}
	if t := s.trades[ev.Symbol]; t != nil {
		t.price, t.size = ev.Entry.Price, ev.Entry.Size
		t.n++
	}
}

// stream is one /api/events client.
type stream struct{ symbols []string }

// sample is one read of the process, made by the sampler for every stream.
type sample struct {
	at       time.Time         // when the handler was read
	begun    time.Time         // before the streams were listed: a stream registered later is not in it
	next     map[string]uint32 // channel -> next sequence number, for rates
	counters any
	rates    [2]float64 // datagrams, messages a second
	channels any
	symbols  []string
	books    map[string]bookView
	latency  *latencyView
	health   *Health
	data     uint64 // a Source's State.Data
}

// bookView is a book as the page's stream sends it: depth 10, with its last trade.
type bookView struct {
	Symbol string     `json:"symbol"`
	RptSeq int64      `json:"rptseq"`
	Stale  bool       `json:"stale"`
	Bids   [][3]any   `json:"bids"`
	Asks   [][3]any   `json:"asks"`
	Last   *tradeView `json:"last,omitempty"`
}

type tradeView struct {
	Price string `json:"price"`
	Size  string `json:"size,omitempty"`
	Count uint64 `json:"count"`
}

type latencyView struct {
	Count  int64        `json:"count"`
	All    [][2]float64 `json:"all"`    // [percentile, µs] since the start
	Recent [][2]float64 `json:"recent"` // over the last few seconds
	Stages []stageView  `json:"stages"`
}

type stageView struct {
	Name  string  `json:"name"`
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// message is one event of the stream.
type message struct {
	At       int64        `json:"t"` // Unix milliseconds
	Role     string       `json:"role"`
	Stats    any          `json:"stats"`
	Rates    [2]float64   `json:"rates"` // datagrams, messages a second
	Channels any          `json:"channels"`
	Symbols  []string     `json:"symbols,omitempty"` // every followed symbol: first message only
	Watched  []string     `json:"watched"`
	Books    []bookView   `json:"books"`
	Latency  *latencyView `json:"latency,omitempty"`
	Health   *Health      `json:"health"` // null when healthy
}

// sampleLoop reads the process every Interval until ctx ends.
func (s *Server) sampleLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	var ring []*hdrhistogram.Snapshot // one total-latency copy a second, for the recent curve
	var ringAt []time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		smp, snap, err := s.sampleOnce(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Debug("opshttp: sample", "err", err)
			}
			continue
		}
		if snap != nil {
			if len(ringAt) == 0 || smp.at.Sub(ringAt[len(ringAt)-1]) >= time.Second {
				ring, ringAt = append(ring, snap), append(ringAt, smp.at)
				if len(ring) > int(recentWindow/time.Second)+1 {
					ring, ringAt = ring[1:], ringAt[1:]
				}
			}
			smp.latency.Recent = curve(diffSnapshot(snap, ring[0]))
		}
		s.mu.Lock()
		s.latest = smp
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}

// watched returns the symbols the streams watch, sorted, and how many streams there are.
func (s *Server) watched() ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for st := range s.streams {
		out = append(out, st.symbols...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out[:min(len(out), maxWatchedAll)], len(s.streams)
}

func (s *Server) sampleOnce(ctx context.Context) (*sample, *hdrhistogram.Snapshot, error) {
	begun := time.Now()
	s.mu.Lock()
	prev := s.latest
	s.mu.Unlock()
	if s.cfg.Source != nil {
		smp, err := s.sampleSource(ctx, begun, prev)
		return smp, nil, err
	}
	if s.cfg.Handler == nil {
		smp := &sample{at: begun, begun: begun, counters: s.cfg.Counters()}
		if s.cfg.Channels != nil {
			smp.channels = s.cfg.Channels()
		}
		return smp, nil, nil
	}
	h := s.cfg.Handler
	syms, streams := s.watched()
	key := strings.Join(syms, ",")
	resubscribe := key != s.tradeFor
	var st feed.OpsState
	var trades map[string]lastTrade
	var all []string
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	err := h.Do(ctx, func() {
		st = h.OpsNow(feed.OpsRequest{Symbols: syms, Depth: pageDepth})
		if resubscribe {
			keep := make(map[string]*lastTrade, len(syms))
			for _, sym := range syms {
				if t := s.trades[sym]; t != nil {
					keep[sym] = t
				} else {
					keep[sym] = &lastTrade{}
				}
			}
			s.trades = keep
		}
		trades = make(map[string]lastTrade, len(syms))
		for sym, t := range s.trades {
			trades[sym] = *t
		}
		if streams > 0 {
			all = h.Symbols()
		}
	})
	if err != nil {
		return nil, nil, err
	}
	// The latency plot and table change slowly: they are read once a second, a histogram
	// per stop of the handler's loop.
	if streams > 0 && (prev == nil || prev.latency == nil || st.At.Sub(s.latencyAt) >= time.Second) {
		if err := copyLatency(ctx, h, &st, false); err != nil {
			return nil, nil, err
		}
		s.latencyAt = st.At
	}
	if resubscribe {
		if s.tradeSub != nil {
			s.tradeSub.Cancel()
			s.tradeSub = nil
		}
		if len(syms) > 0 {
			pats := make([]feed.Pattern, len(syms))
			for i, sym := range syms {
				pats[i] = feed.Pattern(sym)
			}
			s.tradeSub = h.Subscribe(s.onTrade, pats...)
		}
		s.tradeFor = key
	}
	smp := &sample{at: st.At, begun: begun, counters: st.Stats, next: map[string]uint32{}, symbols: all, books: map[string]bookView{}}
	for _, c := range st.Channels {
		smp.next[c.Channel] = c.Next
	}
	smp.channels = channelViews(&st, prev)
	if prev != nil {
		if dt := st.At.Sub(prev.at).Seconds(); dt > 0 {
			if ps, ok := prev.counters.(feed.Stats); ok {
				smp.rates = [2]float64{float64(st.Stats.Datagrams-ps.Datagrams) / dt, float64(st.Stats.Messages-ps.Messages) / dt}
			}
		}
	}
	for _, b := range st.Books {
		v := bookView{Symbol: b.Symbol, RptSeq: b.RptSeq, Stale: b.Stale, Bids: levelsJSON(b.Bids), Asks: levelsJSON(b.Asks)}
		if t, ok := trades[b.Symbol]; ok && t.n > 0 {
			v.Last = &tradeView{Price: decimalString(t.price), Count: t.n}
			if t.size.Valid {
				v.Last.Size = decimalString(t.size)
			}
		}
		smp.books[b.Symbol] = v
	}
	smp.health = s.health(&st)
	var snap *hdrhistogram.Snapshot
	if st.Latency[feed.StageTotal] == nil && prev != nil {
		smp.latency = prev.latency // read again within the second
	}
	if st.Latency[feed.StageTotal] != nil {
		snap = st.Latency[feed.StageTotal]
		total := hdrhistogram.Import(snap)
		lv := &latencyView{Count: total.TotalCount(), All: curve(total)}
		for i, ls := range st.Latency {
			hist := total
			if i != int(feed.StageTotal) {
				hist = hdrhistogram.Import(ls)
			}
			v := hist.ValueAtPercentilesSlice([]float64{50, 99, 99.9})
			lv.Stages = append(lv.Stages, stageView{Name: feed.Stage(i).String(), Count: hist.TotalCount(),
				P50: us(v[0]), P99: us(v[1]), P999: us(v[2]), Max: us(hist.Max())})
		}
		smp.latency = lv
	}
	return smp, snap, nil
}

func us(ns int64) float64 { return math.Round(float64(ns)/10) / 100 }

func decimalString(d md.Decimal) string {
	return string(book.FormatDecimal(nil, d.Mantissa, int(d.Exp)))
}

// curvePercentiles are the points of the percentile plot: quarter decades of 1/(1-p)
// from 0% to 99.999%.
var curvePercentiles = func() []float64 {
	var p []float64
	for x := 0.0; x <= 5.001; x += 0.25 {
		p = append(p, 100*(1-math.Pow(10, -x)))
	}
	return p
}()

// curve returns the percentile curve of h: [percentile, µs] points, the maximum last.
// Points beyond what the count can resolve are left out.
func curve(h *hdrhistogram.Histogram) [][2]float64 {
	n := h.TotalCount()
	if n == 0 {
		return [][2]float64{}
	}
	vals := h.ValueAtPercentilesSlice(curvePercentiles)
	out := make([][2]float64, 0, len(vals)+1)
	for i, p := range curvePercentiles {
		if i > 0 && float64(n)*(1-p/100) < 1 {
			break
		}
		out = append(out, [2]float64{p, us(vals[i])})
	}
	return append(out, [2]float64{100, us(h.Max())})
}

// diffSnapshot returns the histogram of what was recorded between base and cur (copies of
// the same histogram).
func diffSnapshot(cur, base *hdrhistogram.Snapshot) *hdrhistogram.Histogram {
	d := *cur
	d.Counts = slices.Clone(cur.Counts)
	if base != cur && len(base.Counts) == len(cur.Counts) {
		for i, c := range base.Counts {
			d.Counts[i] -= c
		}
	}
	return hdrhistogram.Import(&d)
}

// messageFor builds the event of smp for st; first adds the list of symbols.
func (smp *sample) messageFor(role string, st *stream, first bool) message {
	m := message{At: smp.at.UnixMilli(), Role: role, Stats: smp.counters, Rates: smp.rates, Channels: smp.channels,
		Watched: st.symbols, Books: []bookView{}, Latency: smp.latency, Health: smp.health}
	if first {
		m.Symbols = smp.symbols
		if m.Symbols == nil {
			m.Symbols = []string{}
		}
	}
	for _, sym := range st.symbols {
		if b, ok := smp.books[sym]; ok {
			m.Books = append(m.Books, b)
		}
	}
	return m
}

// events serves /api/events?symbols=A,B: server-sent events, one JSON message per sample
// (Interval); a client that reads slowly gets the latest sample, not a backlog.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	syms, err := ParseSymbolList(r.URL.Query().Get("symbols"), maxWatched)
	if err != nil {
		httpError(w, http.StatusBadRequest, "symbols: "+err.Error())
		return
	}
	st := &stream{symbols: syms}
	if st.symbols == nil {
		st.symbols = []string{}
	}
	s.mu.Lock()
	if len(s.streams) >= s.cfg.MaxStreams {
		s.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("already %d event streams open", s.cfg.MaxStreams))
		return
	}
	s.streams[st] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, st)
		s.mu.Unlock()
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	io.WriteString(w, "retry: 2000\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	var sent *sample
	first := true
	since := time.Now() // samples taken before the stream was registered miss its books
	for {
		s.mu.Lock()
		smp, changed := s.latest, s.changed
		s.mu.Unlock()
		if smp != nil && smp != sent && smp.begun.After(since) {
			b, err := json.Marshal(smp.messageFor(s.cfg.Role, st, first))
			if err != nil {
				return
			}
			rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			sent, first = smp, false
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		}
	}
}
