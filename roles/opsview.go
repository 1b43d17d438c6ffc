package roles

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
	"fastfeed/ingest/moex"
	"fastfeed/opshttp"
)

// This file gives the operator's HTTP view (package opshttp) the processes that are not a
// feed handler: the gateway (its NATS consumer) and the ingest (its MOEX engine), each
// read through its own command queue (natsbus.Consumer.Do, moex.Engine.Do).

// natsSession describes a NATS connection for the fastfeed_nats_sessions gauges.
func natsSession(name string, nc *nats.Conn) opshttp.NATSSession {
	return opshttp.NATSSession{Name: name, State: strings.ToLower(nc.Status().String())}
}

// gatewaySource is the gateway as opshttp reads it: the books, channels and counters of
// its NATS consumer, the state of its NATS connection.
type gatewaySource struct {
	cons *natsbus.Consumer
	nc   *nats.Conn
}

func (g *gatewaySource) Read(ctx context.Context, req opshttp.Request) (opshttp.State, error) {
	var (
		chans []natsbus.ConsumerChannel
		st    opshttp.State
	)
	err := g.cons.Do(ctx, func() {
		st.At = time.Now()
		chans = g.cons.ChannelsNow()
		st.Stale = g.cons.StaleSymbols()
		syms := req.Symbols
		if req.All || req.List {
			all := g.cons.Symbols()
			if req.All {
				syms = all
			}
			if req.List {
				st.Symbols = all
			}
		}
		if len(syms) > 0 {
			st.Books = g.cons.DumpSymbols(syms, req.Depth)
			st.Last = map[string]opshttp.LastTrade{}
			for _, b := range st.Books {
				if t, ok := g.cons.LastTrade(b.Symbol); ok {
					st.Last[b.Symbol] = lastTrade(t.Price.Mantissa, int(t.Price.Exp), t.Size.Mantissa, int(t.Size.Exp), t.Size.Valid, t.Count)
				}
			}
		}
	})
	if err != nil {
		return st, err
	}
	cs := g.cons.Stats()
	st.Counters, st.Data = cs, cs.Messages
	for _, c := range chans {
		state := "live"
		if c.Stale > 0 {
			state = "resync" // books waiting for a W
		}
		st.Channels = append(st.Channels, opshttp.ChannelView{Channel: c.Channel, State: state, Instruments: c.Instruments, Stale: c.Stale})
	}
	n, capacity := g.cons.Inbound()
	st.Queues = []feed.QueueDepth{{Name: "nats inbound", Len: n, Cap: capacity}}
	if s := g.nc.Status(); s != nats.CONNECTED {
		st.Unhealthy = "NATS connection " + strings.ToLower(s.String())
	}
	return st, nil
}

// ingestSource is the ingest as opshttp reads it: the MOEX engine's books, connections
// and counters. live: the datagrams come from the network (a feed that heartbeats, so a
// quiet one is a fault), not from a capture.
type ingestSource struct {
	eng  *moex.Engine
	live bool
}

func (s *ingestSource) Read(ctx context.Context, req opshttp.Request) (opshttp.State, error) {
	var st opshttp.State
	err := s.eng.Do(ctx, func() {
		st.At = time.Now()
		es := s.eng.Stats()
		st.Counters, st.Data, st.WatchData = es, es.Datagrams, s.live
		st.PerChannel = []string{"gaps", "missing", "duplicates", "recovered_ab"}
		books, stale := s.eng.BookCounts()
		st.Stale = stale
		for _, c := range s.eng.Connections() {
			v := opshttp.ChannelView{Channel: c.ID, State: "live", Next: c.Next, Buffered: c.Held, Gaps: c.Gaps,
				Missing: c.Missed, Duplicates: c.Duplicates, RecoveredAB: c.RecoveredAB, Lines: []uint64{c.Datagrams[0], c.Datagrams[1]}}
			if c.Held > 0 {
				v.State = "gap" // a hole waiting for the other line
			}
			if strings.HasPrefix(c.ID, "OLR") { // the books are kept from the orders feed
				v.Instruments, v.Stale = books, len(stale)
			}
			st.Channels = append(st.Channels, v)
			st.Queues = append(st.Queues, feed.QueueDepth{Name: "reorder " + c.ID, Len: c.Held, Cap: c.Window})
		}
		syms := req.Symbols
		if req.All || req.List {
			all := s.eng.BookSymbols()
			if req.All {
				syms = all
			}
			if req.List {
				st.Symbols = all
			}
		}
		if len(syms) == 0 {
			return
		}
		st.Last = map[string]opshttp.LastTrade{}
		for _, sym := range dedupSorted(syms) {
			in, ok := s.eng.Instrument(sym)
			if !ok || in.Book == nil {
				continue
			}
			st.Books = append(st.Books, book.DumpDepth(sym, in.Book, req.Depth))
			if in.Trades > 0 {
				st.Last[sym] = lastTrade(in.LastPx.Mantissa, int(in.LastPx.Exponent), in.LastSize.Mantissa, int(in.LastSize.Exponent),
					in.HasLastSize, in.Trades)
			}
		}
	})
	return st, err
}

// dedupSorted returns the symbols sorted, each once.
func dedupSorted(syms []string) []string {
	out := slices.Clone(syms)
	slices.Sort(out)
	return slices.Compact(out)
}

func lastTrade(px int64, pe int, size int64, se int, hasSize bool, n uint64) opshttp.LastTrade {
	t := opshttp.LastTrade{Price: string(book.FormatDecimal(nil, px, pe)), Count: n}
	if hasSize {
		t.Size = string(book.FormatDecimal(nil, size, se))
	}
	return t
}
