package publisher

// Snapshot channels (docs/snapshot-channels.md): with Config.SnapshotChannels, every
// instrument channel has a snapshot channel, on the same group and port + the snapshot
// port offset (mcast.SnapshotChannel), on which the loop cycles a
// MarketDataSnapshotFullRefresh (W) of every instrument of the channel, paced at
// SnapshotRate datagrams per second (all snapshot channels together, instruments in
// turn). Each W carries LastMsgSeqNumProcessed (369) = the channel's last sequence
// number sent, which the loop's incrementals before it in the same batch bring the
// handler to, and the instrument's RptSeq. Each snapshot channel numbers its own
// datagrams from 1 (the preamble and MsgSeqNum); they are not retained for
// retransmission: a lost W is simply the next cycle's.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// Defaults of the snapshot channels.
const (
	DefaultSnapshotRate = 1000 // W datagrams per second, all snapshot channels together
	snapsPerIteration   = 64   // W sent per loop iteration, at most
)

// snapChannel is the snapshot channel of an instrument channel.
type snapChannel struct {
	a   netip.AddrPort
	seq uint32 // last snapshot datagram number sent
}

// snapState is the loop's snapshot cycle.
type snapState struct {
	chans   []snapChannel // by instrument channel index
	cursor  int           // next instrument of the cycle
	sent    int64         // W sent since the start of the loop (the pacing count)
	start   time.Duration // when the cycle started
	msg     md.Snapshot
	entries []md.Entry
	levels  []book.Level
}

// buildSnapshotChannels gives every instrument channel its snapshot channel and checks
// that none is another channel's address and that the deepest book fits in a datagram.
func (p *Publisher) buildSnapshotChannels() error {
	cfg := &p.cfg
	if !cfg.SnapshotChannels {
		return nil
	}
	used := make(map[netip.AddrPort]string, 2*len(p.chans))
	for i := range p.chans {
		used[p.chans[i].a] = string(p.chans[i].name)
		if p.hasB {
			used[p.chans[i].b] = string(p.chans[i].name) + " (line B)"
		}
	}
	p.snap.chans = make([]snapChannel, p.defs)
	for i := range p.chans[:p.defs] {
		a, err := mcast.SnapshotChannel(p.chans[i].a, cfg.SnapshotPortOffset)
		if err != nil {
			return fmt.Errorf("publisher: config: %w", err)
		}
		if other, clash := used[a]; clash {
			return fmt.Errorf("publisher: config: the snapshot channel %v of %s is also the channel %s: choose another snapshot port offset", a, p.chans[i].name, other)
		}
		p.snap.chans[i].a = a
	}
	// The largest W: every level of both sides, at the largest prices and sizes.
	e := make([]md.Entry, 2*cfg.MaxDepth)
	for i := range e {
		e[i] = md.Entry{Type: md.Bid, Price: md.Dec(1<<52, -MaxExp), Size: md.Dec(1<<40, -MaxExp), Orders: 1 << 20}
	}
	s := md.Snapshot{Header: md.Header{SeqNum: 1 << 31, SendingTime: 1 << 62}, LastMsgSeqNumProcessed: 1 << 31,
		Symbol: make([]byte, MaxSymbolLen), RptSeq: 1 << 31, Entries: e}
	b, err := p.codec.AppendSnapshot(make([]byte, 4, 4096), &s)
	if err != nil {
		return fmt.Errorf("publisher: snapshot channels: %w", err)
	}
	if n := len(b) - 4; n > cfg.PayloadLimit {
		return fmt.Errorf("publisher: config: snapshot channels: a snapshot of %d levels per side may take %d bytes, over the payload limit of %d (lower the depth or raise the limit)",
			cfg.MaxDepth, n, cfg.PayloadLimit)
	}
	p.snap.entries = make([]md.Entry, 0, 2*cfg.MaxDepth)
	return nil
}

// SnapshotChannelOf returns the snapshot channel of the instrument channel named
// channel, and false if there is none (snapshot channels off, or an unknown channel).
func (p *Publisher) SnapshotChannelOf(channel string) (netip.AddrPort, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i, ok := p.byName[channel]
	if !ok || i >= len(p.snap.chans) || i == p.defs {
		return netip.AddrPort{}, false
	}
	return p.snap.chans[i].a, true
}

// snapshotsDue returns how many W the pacing allows now.
func (p *Publisher) snapshotsDue() int64 {
	if len(p.snap.chans) == 0 {
		return 0
	}
	return int64(p.cfg.SnapshotRate*(p.now-p.snap.start).Seconds()) - p.snap.sent
}

// snapshotWake returns when the next W is due.
func (p *Publisher) snapshotWake() time.Duration {
	return p.snap.start + time.Duration(float64(p.snap.sent+1)/p.cfg.SnapshotRate*float64(time.Second))
}

// snapshots sends the next n W of the cycle, each on its instrument's snapshot channel.
func (p *Publisher) snapshots(n int) {
	cfg := &p.cfg
	s := &p.snap
	for ; n > 0 && p.err == nil && len(p.insDefs) > 0; n-- {
		i := s.cursor
		ch := int(p.insChan[i])
		sc := &s.chans[ch]
		s.msg = md.Snapshot{
			Header:                 md.Header{SeqNum: sc.seq + 1, SendingTime: p.wall},
			LastMsgSeqNumProcessed: p.chans[ch].seq,
			Symbol:                 p.insDefs[i].Symbol,
			RptSeq:                 p.books.RptSeq(i),
		}
		s.entries, s.levels = mdbook.Entries(s.entries[:0], p.books.Book(i), s.levels)
		s.msg.Entries = s.entries
		b, err := p.codec.AppendSnapshot(p.scratch[:4], &s.msg)
		s.msg.Entries = nil
		s.sent++
		s.cursor++
		if s.cursor == len(p.insDefs) {
			s.cursor = 0
			p.st.SnapshotCycles++
		}
		if err != nil {
			p.fail(fmt.Errorf("publisher: encode snapshot of %s: %w", p.insDefs[i].Symbol, err))
			return
		}
		if len(b)-4 > cfg.PayloadLimit {
			// Not possible with the depth checked at New; counted rather than split.
			p.scratch = b[:4]
			p.st.SnapshotOversize++
			continue
		}
		sc.seq++
		p.emitSnapshot(sc, b)
	}
}

// emitSnapshot queues the W datagram in b on its snapshot channel, as emit does for the
// other channels, without retaining it: its bytes pass through the retention arena
// (where the queued datagrams live until sent) but no record names them.
func (p *Publisher) emitSnapshot(sc *snapChannel, b []byte) {
	p.scratch = b[:4]
	binary.LittleEndian.PutUint32(b, sc.seq)
	n := len(b)
	size := n
	if p.key != nil {
		size += dgauth.Overhead
	}
	if p.nout > 0 && p.ret.end(size) > p.unsentFrom+uint64(len(p.ret.arena)) {
		p.send()
	}
	dst, off := p.ret.reserve(size)
	copy(dst, b)
	if p.nout == 0 {
		p.unsentFrom = off
	}
	p.out[p.nout], p.stampAt[p.nout], p.sealN[p.nout] = mcast.Message{Buf: dst, Addr: sc.a}, stampOffset(dst, p.wall), p.sealLen(n)
	p.nout++
	p.st.SnapshotDatagrams++
	p.st.SnapshotBytes += uint64(size)
	if p.nout+2 > len(p.out) {
		p.send()
	}
}
