package moex

// Republishing on fastfeed's topic bus (ingest --republish, docs/moex-ingest.md
// "Republish"): the engine's changes drive a publisher.Publisher whose Source is the
// capture or the live feeds.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"fastfeed/book"
	"fastfeed/fast/fastrt"
	"fastfeed/mcast"
	"fastfeed/publisher"
	"fastfeed/replay"
)

// Listener hears the changes an Engine makes to its instruments, as it makes them
// (Engine.Listener). The instrument and trade are valid only during the call.
type Listener interface {
	// Level: the level of side at price (at the book's exponents, PriceExp) may have
	// changed; in.Book.Level tells what it is now.
	Level(in *Instrument, side book.Side, price int64)
	// Book: in.Book was replaced whole (a snapshot, an empty book J); it may be whole
	// again (not stale).
	Book(in *Instrument)
	// Stale: in.Book missed entries (a hole in its RptSeq) and is marked stale.
	Stale(in *Instrument)
	// Trade: a new trade of in.
	Trade(in *Instrument, t *Trade)
	// Definition: an IDF definition of in arrived.
	Definition(in *Instrument)
}

// RepublishStats count what a Republisher could not republish.
type RepublishStats struct {
	Instruments uint64 `json:"instruments"` // instruments added to the bus
	Refused     uint64 `json:"refused"`     // instruments the bus refused (symbol not a topic, group clash)
	Precision   uint64 `json:"precision"`   // a level or trade finer than the instrument's bus exponents: not republished, book stale
	Incomplete  uint64 `json:"incomplete"`  // trades without a price or size
}

// Republisher maps an Engine's changes onto a publisher's topic bus: every instrument
// becomes a topic (its IDF definition, when known before its first change, gives the
// price exponent: the decimals of MinPriceIncrement, at most 8; otherwise 8 decimals;
// sizes at exponent 0); the price levels derived from the MBO book go out as MBP
// New/Change/Delete entries, a replaced book as the entries that bring the bus's book
// there, trades as trade entries (269=2), each with the instrument's bus RptSeq; a
// stale book as SecurityStatus 20 "stale", whole again as 17 "ready". Set it as the
// engine's Listener; it calls the publisher's source methods, so the engine must be
// driven from the publisher's Source.Poll (CaptureSource, LiveSource).
type Republisher struct {
	pub    *publisher.Publisher
	levels [2][]book.Level
	stats  RepublishStats
}

// NewRepublisher returns a Republisher publishing on p (whose Config.Source drives the
// engine).
func NewRepublisher(p *publisher.Publisher) *Republisher { return &Republisher{pub: p} }

// Stats returns the counters; call it from Poll or after the publisher's DataDone.
func (r *Republisher) Stats() RepublishStats { return r.stats }

// index returns in's instrument index on the bus, adding it on first sight.
func (r *Republisher) index(in *Instrument) (int, bool) {
	if in.pub > 0 {
		return int(in.pub - 1), true
	}
	if in.pub < 0 {
		return 0, false
	}
	pe, tick := int8(PriceExp), int64(1)
	if in.Defined && in.MinPriceIncrement.Mantissa > 0 {
		m, e := in.MinPriceIncrement.Mantissa, in.MinPriceIncrement.Exponent
		for m%10 == 0 && e < 0 {
			m /= 10
			e++
		}
		for e > 0 && m < 1e15 {
			m *= 10
			e--
		}
		if e >= PriceExp && e <= 0 {
			pe, tick = int8(e), m
		} else if t, ok := at(in.MinPriceIncrement, PriceExp); ok && t > 0 {
			tick = t
		}
	}
	i, err := r.pub.AddInstrument(publisher.Instrument{Symbol: in.Symbol, PriceExp: pe, SizeExp: 0, Tick: tick,
		Currency: in.Currency, SecurityType: "", Description: ""})
	if err != nil {
		in.pub = -1
		r.stats.Refused++
		return 0, false
	}
	r.stats.Instruments++
	in.pub = int32(i + 1)
	return i, true
}

// scale converts a mantissa at exponent from to exponent to, exactly.
func scale(m int64, from, to int8) (int64, bool) {
	v, ok := at(fastrt.Decimal{Mantissa: m, Exponent: int32(from)}, int32(to))
	return v, ok
}

// Level implements Listener.
func (r *Republisher) Level(in *Instrument, side book.Side, price int64) {
	i, ok := r.index(in)
	if !ok {
		return
	}
	ins := r.exps(i)
	lv, have := in.Book.Level(side, price)
	p, ok1 := scale(price, PriceExp, ins[0])
	var size int64
	ok2 := true
	if have {
		size, ok2 = scale(lv.Size, SizeExp, ins[1])
	}
	if !ok1 || !ok2 {
		r.stats.Precision++
		r.pub.SetStale(i, true)
		return
	}
	r.pub.SetLevel(i, side, p, size, lv.Orders)
}

func (r *Republisher) exps(i int) [2]int8 {
	pe, se := r.pub.SourceExponents(i)
	return [2]int8{pe, se}
}

// Book implements Listener.
func (r *Republisher) Book(in *Instrument) {
	i, ok := r.index(in)
	if !ok {
		return
	}
	ins := r.exps(i)
	exact := true
	for side := range r.levels {
		r.levels[side] = in.Book.AppendLevels(r.levels[side][:0], book.Side(side))
		for k := range r.levels[side] {
			l := &r.levels[side][k]
			p, ok1 := scale(l.Price, PriceExp, ins[0])
			s, ok2 := scale(l.Size, SizeExp, ins[1])
			if !ok1 || !ok2 {
				exact = false
			}
			l.Price, l.Size = p, s
		}
	}
	if !exact {
		r.stats.Precision++
		r.pub.SetStale(i, true)
		return
	}
	r.pub.ReplaceBook(i, r.levels[0], r.levels[1])
	r.pub.SetStale(i, in.Book.Stale())
}

// Stale implements Listener.
func (r *Republisher) Stale(in *Instrument) {
	if i, ok := r.index(in); ok {
		r.pub.SetStale(i, true)
	}
}

// Trade implements Listener.
func (r *Republisher) Trade(in *Instrument, t *Trade) {
	i, ok := r.index(in)
	if !ok {
		return
	}
	if !t.HasPx || !t.HasSize {
		r.stats.Incomplete++
		return
	}
	ins := r.exps(i)
	p, ok1 := at(t.Px, int32(ins[0]))
	s, ok2 := at(t.Size, int32(ins[1]))
	if !ok1 || !ok2 {
		r.stats.Precision++
		return
	}
	r.pub.Trade(i, p, s)
}

// Definition implements Listener: the instrument is on the bus from its definition on.
func (r *Republisher) Definition(in *Instrument) { r.index(in) }

// CaptureSource is a publisher.Source that feeds a capture's datagrams to an engine as
// RunCapture does, as fast as the publisher takes them (Batch datagrams a Poll).
type CaptureSource struct {
	R     *replay.Reader
	E     *Engine
	Batch int // datagrams per Poll; 0 means 256
	// Rate, if > 0, paces the datagrams read at this many per second (a replay for
	// receivers that must keep up); 0 reads as fast as the publisher sends.
	Rate  float64
	Stats CaptureStats

	closed  bool
	serving bool
	start   time.Time
	read    int64
}

// Poll implements publisher.Source.
func (s *CaptureSource) Poll(ctx context.Context, _ *publisher.Publisher, wait time.Duration) (bool, error) {
	if s.closed {
		return true, nil
	}
	if !s.serving {
		s.serving = true
		s.E.startServing(nil) // Do's functions run between batches, as in RunCapture
	}
	s.E.serve()
	batch := s.Batch
	if batch <= 0 {
		batch = 256
	}
	if s.Rate > 0 {
		if s.start.IsZero() {
			s.start = time.Now()
		}
		due := int64(s.Rate*time.Since(s.start).Seconds()) - s.read
		if due <= 0 {
			next := s.start.Add(time.Duration(float64(s.read+1) / s.Rate * float64(time.Second)))
			t := time.NewTimer(min(wait, time.Until(next)))
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			return ctx.Err() != nil, nil
		}
		batch = int(min(int64(batch), due))
		s.read += int64(batch)
	}
	var d replay.Datagram
	for n := range batch {
		if n&(opsBatch-1) == opsBatch-1 {
			s.E.serve()
		}
		err := s.R.Next(&d)
		if err != nil {
			var pe *replay.PacketError
			if errors.As(err, &pe) {
				continue
			}
			s.E.Flush()
			s.E.stopServing()
			s.closed = true
			st := s.R.Stats()
			s.Stats = CaptureStats{Packets: st.Packets, Skipped: st.Skipped, Malformed: st.Malformed}
			if errors.Is(err, io.EOF) {
				return true, nil
			}
			return true, fmt.Errorf("moex: capture: %w", err)
		}
		s.E.Datagram(d.Src, d.Dst, d.Payload, d.Time)
	}
	return ctx.Err() != nil, nil
}

// Wake implements publisher.Source: a capture's Poll does not wait.
func (s *CaptureSource) Wake() {}

// LiveSource is a publisher.Source that joins the engine's market as RunLive does; Do's
// functions run between its batches.
type LiveSource struct {
	// End, if set, ends the input (Poll reports done) at that time.
	End time.Time

	e      *Engine
	p      *mcast.Poller
	groups []netip.AddrPort
	ms     []mcast.Message
}

// NewLiveSource joins every line of e's market (see RunLive).
func NewLiveSource(e *Engine, cfg LiveConfig) (*LiveSource, error) {
	p, err := mcast.NewPoller(mcast.PollerConfig{Interface: cfg.Interface, ReadBuffer: cfg.ReadBuffer, BatchSize: 64})
	if err != nil {
		return nil, fmt.Errorf("moex: live: %w", err)
	}
	s := &LiveSource{e: e, p: p, ms: make([]mcast.Message, 64)}
	for _, cn := range e.market.Connections {
		for _, l := range cn.Lines {
			var idx int
			if l.Src.IsValid() {
				idx, err = p.JoinSourceSpecificGroup(l.Group, l.Src)
			} else {
				idx, err = p.JoinGroup(l.Group)
			}
			if err != nil {
				p.Close()
				return nil, fmt.Errorf("moex: live: join %s line %s %s: %w", cn.ID, l.ID, l.Group, err)
			}
			for len(s.groups) <= idx {
				s.groups = append(s.groups, netip.AddrPort{})
			}
			s.groups[idx] = l.Group
		}
	}
	for i := range s.ms {
		s.ms[i].Buf = make([]byte, 65536)
	}
	e.startServing(p.Wake)
	e.startReplay(context.Background(), p.Wake) // stopped by the end of the input or Close
	return s, nil
}

// Poll implements publisher.Source: one batch of datagrams, waiting at most wait (and
// 10ms, so that holes expire in time). When ctx ends or End passes, it reads what the
// sockets hold, gives up the holes still waiting and reports done.
func (s *LiveSource) Poll(ctx context.Context, _ *publisher.Publisher, wait time.Duration) (bool, error) {
	if ctx.Err() != nil || (!s.End.IsZero() && time.Now().After(s.End)) {
		for {
			n, err := s.read(0)
			if err != nil || n == 0 {
				s.e.stopReplay()
				s.e.Flush()
				s.e.readKernelDrops(s.p, len(s.groups))
				s.e.stopServing()
				return true, err
			}
		}
	}
	if !s.End.IsZero() {
		wait = min(wait, max(0, time.Until(s.End)))
	}
	_, err := s.read(min(wait, 10*time.Millisecond))
	return err != nil, err
}

// read reads one batch, waiting at most timeout, and gives it to the engine.
func (s *LiveSource) read(timeout time.Duration) (int, error) {
	n, err := s.p.ReadBatch(s.ms, timeout)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return 0, nil
		}
		return 0, fmt.Errorf("moex: live: %w", err)
	}
	now := time.Now().UnixNano()
	for i := range n {
		m := &s.ms[i]
		if m.Truncated {
			s.e.stats.Truncated++
			continue
		}
		s.e.Datagram(m.Addr, s.groups[m.Group], m.Buf[:m.N], now)
	}
	s.e.applyReplays()
	s.e.Tick(now)
	s.e.serve()
	return n, nil
}

// Wake implements publisher.Source.
func (s *LiveSource) Wake() { s.p.Wake() }

// Close leaves the groups.
func (s *LiveSource) Close() error {
	s.e.stopReplay()
	s.e.stopServing()
	return s.p.Close()
}
