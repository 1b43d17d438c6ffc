package opshttp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fastfeed/book"
	"fastfeed/feed"
)

// Source is what the server reads of a process that keeps books but is not a feed
// handler: the OMS gateway fed from NATS (its NATS consumer), the MOEX ingest (its ASTS
// engine). Read is called from the server's goroutines (a request, the page's sampler, a
// scrape); the Source makes one consistent read off its hot path, through its own
// command queue, and must not lock its per-message path for it.
type Source interface {
	Read(ctx context.Context, req Request) (State, error)
}

// Request says what a Read copies besides the counters and channels.
type Request struct {
	Symbols []string // books to copy (unknown symbols are left out); nil: none
	All     bool     // copy every book instead of Symbols
	Depth   int      // levels per side copied; 0: all
	List    bool     // fill State.Symbols
}

// State is one consistent read of a Source.
type State struct {
	At time.Time
	// Counters is the process's --stats-out object (a struct with json tags), turned
	// into metrics as Config.Counters is; the keys in PerChannel are left out of it.
	Counters any
	// PerChannel names the ChannelView counters the Source keeps per channel ("gaps",
	// "missing", "duplicates", "recovered_ab", "recovered_fix", "skipped_seq"): they are
	// served as fastfeed_<key>_total{channel}.
	PerChannel []string
	Channels   []ChannelView // sorted or in the process's order; Rate is filled by the server
	Queues     []feed.QueueDepth
	Stale      []string             // stale symbols, sorted
	Books      book.Dump            // the books asked for, sorted by symbol
	Last       map[string]LastTrade // the last trade of the books copied, where known
	Symbols    []string             // every symbol, sorted, when asked for (Request.List)
	// Data counts what has come in (datagrams, messages). With WatchData, /healthz is 503
	// when it has not moved for Config.NoDataAfter (a feed that heartbeats); without,
	// a quiet input is no fault (a capture read to its end, a NATS subject with nothing
	// new to say).
	Data      uint64
	WatchData bool
	// Unhealthy, when not empty, makes /healthz 503 with this reason (a NATS connection
	// away), besides stale books.
	Unhealthy string
}

// LastTrade is the last trade of an instrument, as the page shows it.
type LastTrade struct {
	Price, Size string // exact decimal strings; Size may be empty
	Count       uint64 // trades seen
}

// NATSSession is one NATS connection of the process, for the fastfeed_nats_sessions and
// fastfeed_nats_session_state gauges.
type NATSSession struct {
	Name  string // what the connection is for: "publisher", "consumer"
	State string // nats.Status in lower case: connected, reconnecting, disconnected, closed, ...
}

// channelCounters maps the per-channel counter keys to their ChannelView field.
var channelCounters = map[string]func(c *ChannelView) uint64{
	"duplicates":    func(c *ChannelView) uint64 { return c.Duplicates },
	"gaps":          func(c *ChannelView) uint64 { return c.Gaps },
	"missing":       func(c *ChannelView) uint64 { return c.Missing },
	"recovered_ab":  func(c *ChannelView) uint64 { return c.RecoveredAB },
	"recovered_fix": func(c *ChannelView) uint64 { return c.RecoveredFIX },
	"skipped_seq":   func(c *ChannelView) uint64 { return c.Skipped },
}

func (s *Server) read(ctx context.Context, req Request) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	return s.cfg.Source.Read(ctx, req)
}

// rated returns views with their rates filled from the previous sample.
func rated(at time.Time, views []ChannelView, prev *sample) []ChannelView {
	out := append([]ChannelView(nil), views...)
	if out == nil {
		out = []ChannelView{}
	}
	if prev == nil {
		return out
	}
	dt := at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return out
	}
	for i := range out {
		if p, ok := prev.next[out[i].Channel]; ok {
			out[i].Rate = float64(int32(out[i].Next-p)) / dt
		}
	}
	return out
}

// sourceHealth judges a read of a Source: nil when healthy. It also notes when data last
// came.
func (s *Server) sourceHealth(st *State) *Health {
	var quiet time.Duration
	if st.WatchData {
		s.mu.Lock()
		if st.Data != s.lastData {
			s.lastData, s.lastDataT = st.Data, st.At
		}
		quiet = st.At.Sub(s.lastDataT)
		s.mu.Unlock()
	}
	if n := len(st.Stale); n > 0 {
		h := &Health{Status: "unhealthy", Stale: st.Stale[:min(n, 100)]}
		var chans []string
		for _, c := range st.Channels {
			if c.Stale > 0 {
				chans = append(chans, fmt.Sprintf("%s (%d, %s)", c.Channel, c.Stale, c.State))
			}
		}
		h.Reason = fmt.Sprintf("%d stale book(s)", n)
		if len(chans) > 0 {
			h.Reason += " on " + strings.Join(chans, ", ")
		}
		if st.Unhealthy != "" {
			h.Reason += "; " + st.Unhealthy
		}
		return h
	}
	if st.Unhealthy != "" {
		return &Health{Status: "unhealthy", Reason: st.Unhealthy}
	}
	if st.WatchData && quiet >= s.cfg.NoDataAfter {
		return &Health{Status: "unhealthy", Reason: fmt.Sprintf("no data for %s", quiet.Round(100*time.Millisecond))}
	}
	return nil
}

// collectSource is Collect for a Source.
func (s *Server) collectSource(ch chan<- prometheus.Metric, cl prometheus.Labels) {
	st, err := s.read(context.Background(), Request{})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("fastfeed_up", "the process answered", nil, cl), err)
		return
	}
	s.sourceHealth(&st)
	skip := map[string]bool{}
	for _, k := range st.PerChannel {
		skip[k] = true
	}
	structMetrics(ch, st.Counters, cl, skip, nil)
	for _, k := range st.PerChannel {
		get := channelCounters[k]
		if get == nil {
			continue
		}
		for i := range st.Channels {
			c := &st.Channels[i]
			ch <- counter("fastfeed_"+k+"_total", "--stats-out "+k+", per channel", cl, []string{"channel", c.Channel}, float64(get(c)))
		}
	}
	holes := 0
	for i := range st.Channels {
		c := &st.Channels[i]
		l := []string{"channel", c.Channel}
		ch <- gauge("fastfeed_channel_stale_books", "stale books of the channel", cl, l, float64(c.Stale))
		ch <- gauge("fastfeed_channel_instruments", "followed instruments of the channel", cl, l, float64(c.Instruments))
		ch <- gauge("fastfeed_channel_next_seq", "next sequence number the channel expects", cl, l, float64(c.Next))
		open := 0.0
		if c.State != "live" {
			open, holes = 1, holes+1
		}
		ch <- gauge("fastfeed_channel_open_hole", "1 while the channel has a hole open (gap, recovering or snapshot)", cl, l, open)
		ch <- gauge("fastfeed_channel_state", "1 for the channel's sequencing state", cl, append(l, "state", c.State), 1)
		for line, n := range c.Lines {
			ch <- counter("fastfeed_channel_line_datagrams_total", "datagrams received on each line (A, B) of the channel", cl,
				append(l, "line", string(rune('A'+line))), float64(n))
		}
	}
	ch <- gauge("fastfeed_open_holes", "channels with a hole open", cl, nil, float64(holes))
	for _, q := range st.Queues {
		l := []string{"queue", q.Name}
		ch <- gauge("fastfeed_queue_depth", "entries waiting in the process's queue", cl, l, float64(q.Len))
		ch <- gauge("fastfeed_queue_capacity", "capacity of the process's queue", cl, l, float64(q.Cap))
	}
	ch <- gauge("fastfeed_stale_books", "stale books", cl, nil, float64(len(st.Stale)))
}

// sampleSource is sampleOnce for a Source.
func (s *Server) sampleSource(ctx context.Context, begun time.Time, prev *sample) (*sample, error) {
	syms, streams := s.watched()
	st, err := s.read(ctx, Request{Symbols: syms, Depth: pageDepth, List: streams > 0})
	if err != nil {
		return nil, err
	}
	smp := &sample{at: st.At, begun: begun, counters: pageCounters(&st), next: map[string]uint32{}, symbols: st.Symbols,
		books: map[string]bookView{}, data: st.Data}
	for _, c := range st.Channels {
		smp.next[c.Channel] = c.Next
	}
	smp.channels = rated(st.At, st.Channels, prev)
	if prev != nil {
		if dt := st.At.Sub(prev.at).Seconds(); dt > 0 && st.Data >= prev.data {
			r := float64(st.Data-prev.data) / dt
			smp.rates = [2]float64{r, r}
		}
	}
	for _, b := range st.Books {
		v := bookView{Symbol: b.Symbol, RptSeq: b.RptSeq, Stale: b.Stale, Bids: levelsJSON(b.Bids), Asks: levelsJSON(b.Asks)}
		if t, ok := st.Last[b.Symbol]; ok && t.Count > 0 {
			v.Last = &tradeView{Price: t.Price, Size: t.Size, Count: t.Count}
		}
		smp.books[b.Symbol] = v
	}
	smp.health = s.sourceHealth(&st)
	return smp, nil
}

// pageCounters are the counters the page's header shows: the Source's, with the totals of
// its per-channel counters and the stale books where it does not count them itself.
func pageCounters(st *State) map[string]any {
	m := map[string]any{}
	if st.Counters != nil {
		if b, err := json.Marshal(st.Counters); err == nil {
			_ = json.Unmarshal(b, &m)
		}
	}
	for _, k := range st.PerChannel {
		if get := channelCounters[k]; get != nil {
			var n uint64
			for i := range st.Channels {
				n += get(&st.Channels[i])
			}
			m[k] = n
		}
	}
	if _, ok := m["stale_books"]; !ok {
		m["stale_books"] = len(st.Stale)
	}
	return m
}
