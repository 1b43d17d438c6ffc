package moexsim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"fastfeed/fast/codecs/moexasts"
	"fastfeed/fast/fastrt"
	"fastfeed/ingest/moex"
)

// Loss says which datagrams the exchange leaves out. Counts are per connection, by
// MsgSeqNum; zero turns a kind off.
type Loss struct {
	// EveryA loses every EveryA-th datagram of the Conns on line A only (line B fills it).
	EveryA int
	// EveryBoth loses every EveryBoth-th datagram of the Conns on both lines: a short
	// hole, for the historical replay service.
	EveryBoth int
	// Conns are the connections EveryA and EveryBoth apply to (default OLR, TLR, MSR).
	Conns []string
	// BurstEvery and BurstLen lose BurstLen datagrams of OLR on both lines every
	// BurstEvery datagrams, the first burst at MsgSeqNum BurstFirst (default BurstEvery):
	// a long hole, for the snapshot feed.
	BurstEvery, BurstLen, BurstFirst int
	// BurstConns are the connections the bursts apply to (default OLR): TLR and MSR
	// bursts are holes for the TLS and MSS snapshot feeds.
	BurstConns []string
}

func (l *Loss) bursts(conn string) bool {
	if len(l.BurstConns) == 0 {
		return conn == "OLR"
	}
	for _, c := range l.BurstConns {
		if c == conn {
			return true
		}
	}
	return false
}

func (l *Loss) applies(conn string) bool {
	if len(l.Conns) == 0 {
		return conn == "OLR" || conn == "TLR" || conn == "MSR"
	}
	for _, c := range l.Conns {
		if c == conn {
			return true
		}
	}
	return false
}

// lost reports whether datagram seq of conn is lost on line (0 A, 1 B).
func (l *Loss) lost(conn string, seq uint32, line int) bool {
	s := int(seq)
	first := l.BurstFirst
	if first <= 0 {
		first = l.BurstEvery
	}
	if l.BurstEvery > 0 && l.bursts(conn) && l.BurstLen > 0 && s >= first && (s-first)%l.BurstEvery < l.BurstLen {
		return true
	}
	if !l.applies(conn) {
		return false
	}
	if l.EveryBoth > 0 && s%l.EveryBoth == 0 {
		return true
	}
	return line == 0 && l.EveryA > 0 && s%l.EveryA == 0
}

// send encodes m as the next message of connection id and sends it on both lines (less
// the losses); an incremental's message is kept for the replay service.
func (x *Exchange) send(id string, m *moexasts.Message) error {
	c := x.conns[id]
	c.seq++
	if x.cfg.Market.ID == "CURR" {
		curr(m)
	}
	setSeq(m, c.seq)
	x.daySent++
	setTime(m, moex.SendingTime(time.Date(2026, 12, 7+x.day, 10, 0, 0, 0, time.UTC).Add(time.Duration(x.daySent)*time.Millisecond)))
	x.buf = binary.LittleEndian.AppendUint32(x.buf[:0], c.seq)
	x.enc.Reset()
	b, err := x.enc.Encode(x.buf, m)
	if err != nil {
		return fmt.Errorf("moexsim: encode %s %d: %w", id, c.seq, err)
	}
	x.buf = b
	x.mu.Lock()
	x.stats.Messages[id]++
	if c.cn.Kind == moex.Incremental {
		c.ret = append(c.ret, append([]byte(nil), b[4:]...))
		if len(c.ret) > x.cfg.Retention {
			n := len(c.ret) - x.cfg.Retention
			c.ret = append(c.ret[:0:0], c.ret[n:]...)
			c.retBase += uint32(n)
		}
	}
	lostA := x.lossOn && x.cfg.Loss.lost(id, c.seq, 0)
	lostB := x.lossOn && x.cfg.Loss.lost(id, c.seq, 1)
	switch {
	case lostA && lostB:
		x.stats.LostBoth[id]++
	case lostA:
		x.stats.LostA[id]++
	}
	x.mu.Unlock()
	for li := range c.cn.Lines {
		if (li == 0 && lostA) || li > 1 {
			continue
		}
		if li == 1 && x.cfg.BLag > 0 {
			if !lostB {
				c.late = append(c.late, append([]byte(nil), b...))
			}
			if len(c.late) > x.cfg.BLag {
				if err := x.sendLine(c, 1, c.late[0]); err != nil {
					return err
				}
				c.late = c.late[1:]
			}
			continue
		}
		if li == 1 && lostB {
			continue
		}
		if err := x.sendLine(c, li, b); err != nil {
			return err
		}
	}
	return nil
}

func (x *Exchange) sendLine(c *conn, li int, b []byte) error {
	l := c.cn.Lines[li]
	if err := x.out.Send(netip.AddrPortFrom(l.Src, x.cfg.SourcePort), l.Group, b); err != nil {
		return fmt.Errorf("moexsim: send %s line %s: %w", c.cn.ID, l.ID, err)
	}
	return nil
}

// FlushLate sends line B's delayed copies (Config.BLag) now.
func (x *Exchange) FlushLate() error {
	for _, c := range x.conns {
		for _, b := range c.late {
			if err := x.sendLine(c, 1, b); err != nil {
				return err
			}
		}
		c.late = nil
	}
	return nil
}

func setSeq(m *moexasts.Message, seq uint32) {
	switch m.ID {
	case moexasts.IDXOLRFOND:
		m.XOLRFOND.MsgSeqNum = seq
	case moexasts.IDXOLRCURR:
		m.XOLRCURR.MsgSeqNum = seq
	case moexasts.IDXTLRCURR:
		m.XTLRCURR.MsgSeqNum = seq
	case moexasts.IDXMSRCURR:
		m.XMSRCURR.MsgSeqNum = seq
	case moexasts.IDWOLSCURR:
		m.WOLSCURR.MsgSeqNum = seq
	case moexasts.IDWTLSCURR:
		m.WTLSCURR.MsgSeqNum = seq
	case moexasts.IDXTLRFOND:
		m.XTLRFOND.MsgSeqNum = seq
	case moexasts.IDXMSRFOND:
		m.XMSRFOND.MsgSeqNum = seq
	case moexasts.IDWOLSFOND:
		m.WOLSFOND.MsgSeqNum = seq
	case moexasts.IDWTLSFOND:
		m.WTLSFOND.MsgSeqNum = seq
	case moexasts.IDWGeneric:
		m.WGeneric.MsgSeqNum = seq
	case moexasts.IDD:
		m.D.MsgSeqNum = seq
	case moexasts.IDF:
		m.F.MsgSeqNum = seq
	case moexasts.IDH:
		m.H.MsgSeqNum = seq
	case moexasts.IDX0:
		m.X0.MsgSeqNum = seq
	}
}

func setTime(m *moexasts.Message, t uint64) {
	switch m.ID {
	case moexasts.IDXOLRFOND:
		m.XOLRFOND.SendingTime = t
	case moexasts.IDXOLRCURR:
		m.XOLRCURR.SendingTime = t
	case moexasts.IDXTLRCURR:
		m.XTLRCURR.SendingTime = t
	case moexasts.IDXMSRCURR:
		m.XMSRCURR.SendingTime = t
	case moexasts.IDWOLSCURR:
		m.WOLSCURR.SendingTime = t
	case moexasts.IDWTLSCURR:
		m.WTLSCURR.SendingTime = t
	case moexasts.IDXTLRFOND:
		m.XTLRFOND.SendingTime = t
	case moexasts.IDXMSRFOND:
		m.XMSRFOND.SendingTime = t
	case moexasts.IDWOLSFOND:
		m.WOLSFOND.SendingTime = t
	case moexasts.IDWTLSFOND:
		m.WTLSFOND.SendingTime = t
	case moexasts.IDWGeneric:
		m.WGeneric.SendingTime = t
	case moexasts.IDD:
		m.D.SendingTime = t
	case moexasts.IDF:
		m.F.SendingTime = t
	case moexasts.IDH:
		m.H.SendingTime = t
	case moexasts.IDX0:
		m.X0.SendingTime = t
	}
}

func dec(m int64, e int8) fastrt.Decimal { return fastrt.Decimal{Mantissa: m, Exponent: int32(e)} }
