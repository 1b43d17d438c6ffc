package publisher

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// Errors of Retransmit and Snapshot. The errors returned wrap them; test
// with errors.Is.
var (
	ErrUnknownChannel  = errors.New("unknown channel")
	ErrUnknownSymbol   = errors.New("unknown symbol")
	ErrBeyondRetention = errors.New("range beyond the retention window")
	ErrRangeTooLarge   = errors.New("range too large")
	ErrInvalidRange    = errors.New("invalid range")
	ErrNotRunning      = errors.New("publisher not running")
)

// RangeError is the error of a Retransmit the publisher refuses.
type RangeError struct {
	Channel  string
	Beg, End uint32 // the range asked for
	// First and Last are the channel's retained range when the request was
	// served: First is the oldest sequence number kept, Last the last sent
	// (First > Last: nothing kept). Both are 0 for ErrUnknownChannel,
	// ErrRangeTooLarge and ErrInvalidRange.
	First, Last uint32
	Limit       int   // the most sequence numbers per request
	Err         error // ErrUnknownChannel, ErrBeyondRetention, ErrRangeTooLarge or ErrInvalidRange
}

func (e *RangeError) Error() string {
	msg := fmt.Sprintf("publisher: retransmit %s %d..%d: %v", e.Channel, e.Beg, e.End, e.Err)
	switch e.Err {
	case ErrBeyondRetention:
		switch {
		case e.End > e.Last:
			msg += fmt.Sprintf(": the last sequence number sent is %d", e.Last)
		case e.First > e.Last:
			msg += ": nothing of the channel is retained"
		default:
			msg += fmt.Sprintf(": %d..%d retained", e.First, e.Last)
		}
	case ErrRangeTooLarge:
		msg += fmt.Sprintf(": %d sequence numbers, the limit is %d", uint64(e.End)-uint64(e.Beg)+1, e.Limit)
	case ErrInvalidRange:
		msg += ": want 1 <= begin <= end"
	}
	return msg
}

func (e *RangeError) Unwrap() error { return e.Err }

// ChannelInfo describes a channel.
type ChannelInfo struct {
	Name        string         // ApplID, "G<group>:<port>"
	Group       netip.AddrPort // line A
	B           netip.AddrPort // line B; the zero value if there is no B line
	Definitions bool           // the instrument definitions channel
	Instruments []string       // symbols on the channel, in configuration order
}

// Channels describes every channel: the instrument channels, then the
// definitions channel, then (with a Source) the channels opened since, in the order
// opened. It may be called at any time.
func (p *Publisher) Channels() []ChannelInfo {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := slices.Clone(p.infos)
	for i := range out {
		out[i].Instruments = slices.Clone(out[i].Instruments)
	}
	return out
}

// ChannelOf returns the name of the channel of symbol.
func (p *Publisher) ChannelOf(symbol string) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i, ok := p.bySymbol[symbol]
	if !ok {
		return "", false
	}
	return p.infos[p.insChan[i]].Name, true
}

// Instruments returns the instruments published.
func (p *Publisher) Instruments() []Instrument {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Clone(p.cfg.Instruments)
}

// exponents returns the price and size exponents of symbol.
func (p *Publisher) exponents(symbol string) ([2]int8, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i, ok := p.bySymbol[symbol]
	if !ok {
		return [2]int8{}, false
	}
	in := &p.cfg.Instruments[i]
	return [2]int8{in.PriceExp, in.SizeExp}, true
}

// instrumentCount returns how many instruments are published.
func (p *Publisher) instrumentCount() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.cfg.Instruments)
}

// Behind returns how far behind its schedule (Config.Rate) the paced sending is now:
// 0 when on time, without a rate, or once the data has stopped. The recovery service
// holds its turns while the multicast is behind.
func (p *Publisher) Behind() time.Duration { return time.Duration(p.lag.Load()) }

// Templates returns the FAST templates, for an md.Codec of one's own.
func (p *Publisher) Templates() *fast.Templates { return p.cfg.Templates }

// Recovery returns the recovery service's configuration (defaults applied).
func (p *Publisher) Recovery() RecoveryConfig {
	r := p.cfg.Recovery
	r.Users = slices.Clone(r.Users)
	return r
}

// Authenticate reports whether username and password are a login of the
// recovery service: a password stored as an argon2id or bcrypt hash (fastfeed passwd)
// is checked against it, one in clear text compared in constant time (passhash).
func (p *Publisher) Authenticate(username, password string) bool {
	return p.users.Check(username, password)
}

// ClearTextUsers returns the recovery logins whose password is stored in clear text.
func (p *Publisher) ClearTextUsers() []string { return p.users.ClearText() }

// SplitDatagram splits a datagram into its sequence preamble and its FAST
// message.
func SplitDatagram(d []byte) (seq uint32, msg []byte, err error) {
	if len(d) < 5 {
		return 0, nil, fmt.Errorf("publisher: datagram of %d bytes: want a 4-byte preamble and a message", len(d))
	}
	return binary.LittleEndian.Uint32(d), d[4:], nil
}

// DecodeDatagram decodes a datagram (a retained one or one received) with c:
// the message's value is in c's field of the kind returned and aliases c's
// buffers until its next Decode.
func DecodeDatagram(c *md.Codec, d []byte) (seq uint32, kind md.Kind, err error) {
	seq, msg, err := SplitDatagram(d)
	if err != nil {
		return 0, 0, err
	}
	kind, err = c.Decode(msg)
	if err != nil {
		return seq, 0, fmt.Errorf("publisher: datagram %d: %w", seq, err)
	}
	return seq, kind, nil
}

// request is a Retransmit or a Snapshot handed to the publishing loop.
// The loop owns it until it closes done.
type request struct {
	ctx context.Context
	ch  int

	// Retransmit.
	retransmit bool
	beg, end   uint32
	started    bool
	pos        uint64 // position+1 of the record of seq
	seq        uint32 // next sequence number to walk back from
	out        [][]byte

	// Snapshot.
	instruments []int
	snaps       []md.Snapshot

	err  error
	done chan struct{}
}

// Retransmit returns copies of the channel's datagrams with sequence
// numbers beg..end, exactly as they were sent (preamble included; decode
// them with DecodeDatagram). The retention window is shared by all
// channels: the last Config.Retention sequenced datagrams (X, d, f) that
// also fit in Config.RetentionBytes. Errors are *RangeError wrapping
// ErrUnknownChannel, ErrInvalidRange (beg 0 or beg > end), ErrRangeTooLarge
// (more than Config.MaxRetransmit numbers) or ErrBeyondRetention (older
// than kept or newer than sent), or ErrNotRunning before Run. The loop
// serves a large request a few hundred datagrams per iteration, between
// send ticks; after Run has returned, it is served in the caller.
func (p *Publisher) Retransmit(ctx context.Context, channel string, beg, end uint32) ([][]byte, error) {
	p.mu.RLock()
	ch, ok := p.byName[channel]
	p.mu.RUnlock()
	switch {
	case !ok:
		return nil, &RangeError{Channel: channel, Beg: beg, End: end, Limit: p.cfg.MaxRetransmit, Err: ErrUnknownChannel}
	case beg == 0 || beg > end:
		return nil, &RangeError{Channel: channel, Beg: beg, End: end, Limit: p.cfg.MaxRetransmit, Err: ErrInvalidRange}
	case uint64(end)-uint64(beg) >= uint64(p.cfg.MaxRetransmit):
		return nil, &RangeError{Channel: channel, Beg: beg, End: end, Limit: p.cfg.MaxRetransmit, Err: ErrRangeTooLarge}
	}
	r := &request{ctx: ctx, ch: ch, retransmit: true, beg: beg, end: end}
	if err := p.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.out, r.err
}

// Snapshot returns a snapshot of each instrument in symbols, all on
// channel, or of every instrument of the channel if symbols is empty; with
// channel "" the symbols may be on any channels. Each snapshot holds the
// book's levels (bids then asks, best first, as md.Entries with Type,
// Price, Size and Orders), the instrument's RptSeq and, in
// LastMsgSeqNumProcessed, the last sequence number of its channel when it
// was taken: applying the channel's incrementals after that number to the
// snapshot gives the live book. Header.SeqNum is 0 and SendingTime the
// moment it was taken. Snapshots are taken between send ticks, a few
// instruments per loop iteration.
func (p *Publisher) Snapshot(ctx context.Context, channel string, symbols []string) ([]md.Snapshot, error) {
	p.mu.RLock()
	ch, ins, err := p.snapshotScope(channel, symbols)
	p.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	r := &request{ctx: ctx, ch: ch, instruments: ins, snaps: make([]md.Snapshot, 0, len(ins))}
	if err := p.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.snaps, r.err
}

// snapshotScope resolves a Snapshot's channel and symbols to instruments; p.mu is held.
func (p *Publisher) snapshotScope(channel string, symbols []string) (int, []int, error) {
	ch := -1
	if channel != "" {
		c, ok := p.byName[channel]
		if !ok {
			return 0, nil, fmt.Errorf("publisher: snapshot of %s: %w", channel, ErrUnknownChannel)
		}
		if c == p.defs {
			return 0, nil, fmt.Errorf("publisher: snapshot of %s: %w: it is the definitions channel and carries no books", channel, ErrUnknownChannel)
		}
		ch = c
	} else if len(symbols) == 0 {
		return 0, nil, fmt.Errorf("publisher: snapshot: %w: give a channel or symbols", ErrUnknownChannel)
	}
	var ins []int
	for _, s := range symbols {
		i, ok := p.bySymbol[s]
		if !ok {
			return 0, nil, fmt.Errorf("publisher: snapshot of %q: %w", s, ErrUnknownSymbol)
		}
		if ch >= 0 && int(p.insChan[i]) != ch {
			return 0, nil, fmt.Errorf("publisher: snapshot of %q: %w on channel %s (it is on %s)", s, ErrUnknownSymbol, channel, p.infos[p.insChan[i]].Name)
		}
		ins = append(ins, i)
	}
	if len(symbols) == 0 {
		for _, i := range p.chans[ch].instruments {
			ins = append(ins, int(i))
		}
	}
	return ch, ins, nil
}

// submit hands r to the loop and waits for it. Once Run has returned, the
// state is frozen and the caller serves r itself (continuing where the loop
// left off, if it had started).
func (p *Publisher) submit(ctx context.Context, r *request) error {
	r.done = make(chan struct{})
	switch p.state.Load() {
	case stateNew:
		return ErrNotRunning
	case stateStopped:
		<-p.stopped
		p.serveAfterStop(r)
		return nil
	}
	select {
	case p.reqs <- r:
		if p.src != nil {
			p.src.Wake()
		}
	case <-p.stopped:
		p.serveAfterStop(r)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stopped:
		select {
		case <-r.done:
		default:
			// The loop returned holding r unfinished, or with r still in
			// the channel buffer; it will not touch r again.
			p.serveAfterStop(r)
		}
		return nil
	}
}

// serveAfterStop serves r without budget: the state is frozen once Run has
// returned, and reading it from several goroutines is safe.
func (p *Publisher) serveAfterStop(r *request) {
	budget := budget{copies: 1 << 30, walk: 1 << 30, snaps: 1 << 30}
	for !p.serveOne(r, &budget) {
	}
}

type budget struct{ copies, walk, snaps int }

// serve takes new requests and works on the queued ones within this
// iteration's budget.
func (p *Publisher) serve() {
	for len(p.queue) < maxQueued {
		select {
		case r := <-p.reqs:
			p.queue = append(p.queue, r)
			continue
		default:
		}
		break
	}
	b := budget{copies: copyBudget, walk: walkBudget, snaps: snapshotBudget}
	for len(p.queue) > 0 && b.copies > 0 && b.walk > 0 && b.snaps > 0 {
		r := p.queue[0]
		if !p.serveOne(r, &b) {
			return
		}
		close(r.done)
		n := copy(p.queue, p.queue[1:])
		p.queue[n] = nil
		p.queue = p.queue[:n]
	}
}

// serveOne works on r within b and reports whether r is finished.
func (p *Publisher) serveOne(r *request, b *budget) bool {
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return true
	}
	if r.retransmit {
		return p.serveRetransmit(r, b)
	}
	for b.snaps > 0 && len(r.snaps) < len(r.instruments) {
		r.snaps = append(r.snaps, p.snapshot(r.instruments[len(r.snaps)]))
		b.snaps--
	}
	return len(r.snaps) == len(r.instruments)
}

func (p *Publisher) serveRetransmit(r *request, b *budget) bool {
	c := &p.chans[r.ch]
	fail := func() bool {
		r.out = nil
		r.err = &RangeError{Channel: string(c.name), Beg: r.beg, End: r.end, First: c.oldest, Last: c.seq,
			Limit: p.cfg.MaxRetransmit, Err: ErrBeyondRetention}
		return true
	}
	if !r.started {
		if r.end > c.seq || r.beg < c.oldest {
			return fail()
		}
		r.started = true
		r.pos, r.seq = c.last, c.seq
		r.out = make([][]byte, r.end-r.beg+1)
	}
	for r.seq >= r.beg {
		if b.walk == 0 || (r.seq <= r.end && b.copies == 0) {
			return false
		}
		rec := p.ret.at(r.pos - 1)
		if r.pos == 0 || rec == nil || rec.seq != r.seq || int(rec.ch) != r.ch {
			return fail() // evicted while being served
		}
		if r.seq <= r.end {
			r.out[r.seq-r.beg] = bytes.Clone(p.ret.bytes(rec))
			b.copies--
		}
		b.walk--
		r.pos = rec.prev
		r.seq--
	}
	return true
}

// snapshot takes instrument i's snapshot.
func (p *Publisher) snapshot(i int) md.Snapshot {
	b := p.books.Book(i)
	s := md.Snapshot{
		Header:                 md.Header{SendingTime: p.wall},
		LastMsgSeqNumProcessed: p.chans[p.insChan[i]].seq,
		Symbol:                 slices.Clone(p.insDefs[i].Symbol),
		RptSeq:                 p.books.RptSeq(i),
		Entries:                make([]md.Entry, 0, b.Depth(book.Bid)+b.Depth(book.Ask)),
	}
	s.Entries, _ = mdbook.Entries(s.Entries, b, nil) // the book is at the instrument's exponents
	return s
}
