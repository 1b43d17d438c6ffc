package publisher

// Building and sending the datagrams of each kind.

import (
	"encoding/binary"
	"fmt"
	"time"

	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
)

// incremental sends entries as one incremental refresh, or as several when
// they do not fit in the payload limit: each part then has its own sequence
// number and all but the last are marked Continued.
func (p *Publisher) incremental(ch int, entries []md.Entry) {
	c := &p.chans[ch]
	limit := p.cfg.PayloadLimit
	for len(entries) > 0 && p.err == nil {
		// Guess from the bytes per entry of the last incremental, with a
		// margin, so that one encoding is usually enough.
		k := min(len(entries), p.maxEntries, max(1, limit*15/p.entryBytes16))
		var b []byte
		for {
			p.inc.Header = md.Header{SeqNum: c.seq + 1, SendingTime: p.wall}
			p.inc.Continued = k < len(entries)
			p.inc.Entries = entries[:k]
			var err error
			b, err = p.codec.AppendIncremental(p.scratch[:4], &p.inc)
			if err != nil {
				p.fail(fmt.Errorf("publisher: encode incremental on %s: %w", c.name, err))
				return
			}
			p.scratch = b[:4] // keep any growth
			n := len(b) - 4
			if n <= limit {
				break
			}
			if k == 1 {
				p.fail(fmt.Errorf("publisher: one entry of %s encodes in %d bytes, over the payload limit of %d", entries[0].Symbol, n, limit))
				return
			}
			k = max(1, min(k-1, k*limit/n-1))
		}
		p.entryBytes16 = max(1, (3*p.entryBytes16+16*(len(b)-4)/k)/4)
		p.inc.Entries = nil
		c.seq++
		p.st.Incrementals++
		p.st.Entries += uint64(k)
		if k < len(entries) {
			p.st.Splits++
		}
		p.emit(ch, b, c.seq, true)
		entries = entries[k:]
	}
}

// definitions sends up to n SecurityDefinitions of the running cycle.
func (p *Publisher) definitions(n int) {
	for ; n > 0 && p.defCursor < len(p.insDefs) && p.err == nil; n-- {
		p.definition(p.defCursor)
		p.defCursor++
	}
	if p.defCursor >= len(p.insDefs) {
		p.defCursor = -1
	}
}

// definition sends the SecurityDefinition of instrument i.
func (p *Publisher) definition(i int) {
	c := &p.chans[p.defs]
	d := &p.insDefs[i]
	d.Header = md.Header{SeqNum: c.seq + 1, SendingTime: p.wall}
	d.TotNumReports = uint32(len(p.insDefs))
	b, err := p.codec.AppendDefinition(p.scratch[:4], d)
	if err != nil {
		p.fail(fmt.Errorf("publisher: encode security definition of %s: %w", d.Symbol, err))
		return
	}
	c.seq++
	p.st.Definitions++
	p.emit(p.defs, b, c.seq, true)
	if x := p.ext; x != nil && x.open[i] && x.books[i].Stale() {
		// A handler that joined after the source said "stale" learns it here, within a
		// definitions cycle: the status is repeated on the instrument's channel while the
		// source's book stays stale.
		p.flushTick()
		p.statusText(i, StatusStale, textStale)
	}
}

// status sends the SecurityStatus (open) of instrument i.
func (p *Publisher) status(i int) { p.statusText(i, statusOpen, nil) }

// statusText sends a SecurityStatus of instrument i with trading status ts and text.
func (p *Publisher) statusText(i int, ts uint32, text []byte) {
	ch := int(p.insChan[i])
	c := &p.chans[ch]
	m := md.Status{Header: md.Header{SeqNum: c.seq + 1, SendingTime: p.wall}, Symbol: p.insDefs[i].Symbol, TradingStatus: ts, Text: text}
	b, err := p.codec.AppendStatus(p.scratch[:4], &m)
	if err != nil {
		p.fail(fmt.Errorf("publisher: encode security status of %s: %w", m.Symbol, err))
		return
	}
	c.seq++
	p.st.Statuses++
	p.emit(ch, b, c.seq, true)
}

// reset sends a SequenceReset (NewSeqNo = the next number) with preamble 0.
func (p *Publisher) reset(ch int) {
	c := &p.chans[ch]
	m := md.Reset{Header: md.Header{SendingTime: p.wall}, NewSeqNo: c.seq + 1}
	b, err := p.codec.AppendReset(p.scratch[:4], &m)
	if err != nil {
		p.fail(fmt.Errorf("publisher: encode sequence reset on %s: %w", c.name, err))
		return
	}
	p.st.Resets++
	p.emit(ch, b, 0, false)
}

// heartbeat sends a Heartbeat carrying the last sequence number sent in its
// preamble, MsgSeqNum and LastMsgSeqNumProcessed.
func (p *Publisher) heartbeat(ch int) {
	c := &p.chans[ch]
	if c.closed {
		return // a Source's channel that has sent nothing yet
	}
	m := md.Heartbeat{Header: md.Header{SeqNum: c.seq, SendingTime: p.wall}, LastSeqNum: c.seq}
	b, err := p.codec.AppendHeartbeat(p.scratch[:4], &m)
	if err != nil {
		p.fail(fmt.Errorf("publisher: encode heartbeat on %s: %w", c.name, err))
		return
	}
	p.st.Heartbeats++
	p.emit(ch, b, c.seq, false)
}

// heartbeats sends a heartbeat on every channel idle for the interval.
func (p *Publisher) heartbeats() {
	for ch := range p.chans {
		if p.now-p.chans[ch].lastSend >= p.cfg.Heartbeat {
			p.heartbeat(ch)
		}
	}
}

// emit finishes the datagram in b (4 bytes of room for the preamble, then
// the FAST message): it writes the preamble, copies it into the retention
// arena, records it if it is sequenced and queues it on both lines.
func (p *Publisher) emit(ch int, b []byte, preamble uint32, sequenced bool) {
	p.scratch = b[:4] // keep any growth
	binary.LittleEndian.PutUint32(b, preamble)
	n := len(b)
	size := n // on the wire: with the trailer, sealed in send (auth.go)
	if p.key != nil {
		size += dgauth.Overhead
	}
	if p.nout > 0 && p.ret.end(size) > p.unsentFrom+uint64(len(p.ret.arena)) {
		p.send() // the arena would overwrite datagrams not yet sent
	}
	dst, off := p.ret.reserve(size)
	copy(dst, b)
	if p.nout == 0 {
		p.unsentFrom = off
	}
	c := &p.chans[ch]
	if sequenced {
		c.last = p.ret.add(int32(ch), preamble, off, n, c.last)
	}
	c.lastSend = p.now
	at := stampOffset(dst, p.wall)
	p.out[p.nout], p.stampAt[p.nout], p.sealN[p.nout] = mcast.Message{Buf: dst, Addr: c.a}, at, p.sealLen(n)
	p.nout++
	if p.hasB {
		// The same bytes: sealed once, with line A's address, through the A copy.
		p.out[p.nout], p.stampAt[p.nout], p.sealN[p.nout] = mcast.Message{Buf: dst, Addr: c.b}, at, -1
		p.nout++
	}
	p.st.Datagrams++
	p.st.Bytes += uint64(size)
	if p.nout+2 > len(p.out) {
		p.send()
	}
}

// send hands the queued datagrams to the kernel.
func (p *Publisher) send() {
	if p.nout == 0 {
		return
	}
	p.restamp(time.Now().UnixNano()) // SendingTime = now, just before the kernel has them
	p.seal()                         // after the last change to the bytes
	n, err := p.w.WriteBatch(p.out[:p.nout])
	if err != nil {
		p.fail(fmt.Errorf("publisher: sent %d of %d datagrams: %w", n, p.nout, err))
	}
	p.nout = 0
}
