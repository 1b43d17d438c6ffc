package natsbus

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/feed"
	"fastfeed/md"
)

func (c *Consumer) inst(symbol []byte, channel string) *cInst {
	in := c.insts[string(symbol)]
	if in == nil {
		in = &cInst{symbol: string(symbol), channel: channel}
		in.snapSubj = Subject(PrefixSnap, channel, in.symbol)
		c.insts[in.symbol] = in
		c.order = append(c.order, in)
		c.stats.instruments.Add(1)
		c.chMu.Lock()
		c.channels[in.symbol] = channel
		c.chMu.Unlock()
	}
	return in
}

// handle applies one message.
func (c *Consumer) handle(nm *nats.Msg) {
	c.stats.messages.Add(1)
	if err := ParsePayload(nm.Data, &c.msg); err != nil {
		c.refuse(nm, err)
		return
	}
	m := &c.msg
	if !c.subjects.names(nm.Subject, m.Symbol) {
		c.mismatch(nm, m)
		return
	}
	channel := c.subjects.channel(nm.Subject)
	if !c.wanted(string(m.Symbol), channel) {
		return
	}
	if m.PublishTime > 0 {
		c.record(m, time.Now().UnixNano())
	}
	c.deliver(nm, m, channel, -1)
}

func (c *Consumer) refuse(nm *nats.Msg, err error) {
	c.stats.parseErrors.Add(1)
	c.log.Debug("NATS payload refused", "subject", nm.Subject, "err", err)
}

func (c *Consumer) mismatch(nm *nats.Msg, m *Message) {
	// Permissions are by subject: a payload must be about the subject's instrument.
	c.stats.subjectMismatch.Add(1)
	c.log.Debug("NATS payload about another instrument than its subject", "subject", nm.Subject, "symbol", string(m.Symbol))
}

// record takes the publish-to-consumer latency of m at now (ns).
func (c *Consumer) record(m *Message, now int64) {
	lat := now - m.PublishTime
	c.stats.lastLatency.Store(lat)
	if c.cfg.Latency != nil && m.Kind == md.KindIncremental {
		// Clamped to the histogram's range: a lag beyond it shows as its top, not
		// as nothing (RecordValue refuses what it cannot hold).
		_ = c.cfg.Latency.RecordValue(min(max(lat, 1), c.cfg.Latency.HighestTrackableValue()))
	}
}

// deliver applies a parsed message, about an instrument the consumer follows, to its
// books. m is read only (a Group hands the same one to all its members). slot is the
// symbol's number in the consumer's group (Group.slot), -1 if none: with one, the
// instrument is found by index instead of by a map lookup per member.
func (c *Consumer) deliver(nm *nats.Msg, m *Message, channel string, slot int) {
	var in *cInst
	if slot >= 0 && slot < len(c.bySlot) {
		in = c.bySlot[slot]
	}
	if in == nil {
		if in = c.insts[string(m.Symbol)]; in == nil {
			if len(c.insts) >= c.cfg.MaxInstruments {
				c.stats.tooMany.Add(1)
				return
			}
			in = c.inst(m.Symbol, channel)
		}
		if slot >= 0 {
			if slot >= len(c.bySlot) {
				c.bySlot = append(c.bySlot, make([]*cInst, slot+1-len(c.bySlot))...)
			}
			c.bySlot[slot] = in
		}
	}
	c.refreshSubs(in)
	switch m.Kind {
	case md.KindSnapshot:
		c.applySnapshot(in, m)
	case md.KindIncremental:
		if !in.synced {
			c.buffer(in, nm.Data)
			return
		}
		c.applyEntries(in, m, nm.Data)
	case md.KindStatus:
		switch {
		case m.TradingStatus == StatusStale && string(m.Text) == TextStale:
			c.stats.stale.Add(1)
			if !in.stale {
				in.stale = true
				c.unsync(in, false)
			}
		case m.TradingStatus == StatusReady && string(m.Text) == TextReady:
			// A W follows.
		default:
			c.publish(in, feed.Event{Kind: feed.EventStatus, Symbol: in.symbol, Book: in.book, Status: m.TradingStatus})
		}
	}
}

// subjectCache checks subjects against payloads and names their channels, with the
// channel tokens seen cached.
type subjectCache struct {
	scratch []byte
	chanTok map[string]string // subject token -> channel name
}

// names reports whether the subject's last token is symbol's token.
func (sc *subjectCache) names(subject string, symbol []byte) bool {
	i := strings.LastIndexByte(subject, '.')
	if i < 0 || len(symbol) == 0 {
		return false
	}
	sc.scratch = appendToken(sc.scratch[:0], string(symbol), false)
	return subject[i+1:] == string(sc.scratch)
}

// channel returns the channel of a subject (its second token).
func (sc *subjectCache) channel(subject string) string {
	i := strings.IndexByte(subject, '.')
	if i < 0 {
		return ""
	}
	rest := subject[i+1:]
	j := strings.IndexByte(rest, '.')
	if j < 0 {
		return ""
	}
	tok := rest[:j]
	if ch, ok := sc.chanTok[tok]; ok {
		return ch
	}
	ch := ParseChannelToken(tok)
	if sc.chanTok == nil {
		sc.chanTok = map[string]string{}
	}
	if len(sc.chanTok) < 1<<16 {
		sc.chanTok[tok] = ch
	}
	return ch
}

// buffer keeps an X for when the instrument's W arrives.
func (c *Consumer) buffer(in *cInst, data []byte) {
	if len(in.buf) >= c.cfg.MaxBuffer {
		c.stats.bufferDrops.Add(uint64(len(in.buf)))
		clear(in.buf)
		in.buf = in.buf[:0]
	}
	in.buf = append(in.buf, append([]byte(nil), data...))
	c.stats.buffered.Add(1)
	if in.askedAt.IsZero() {
		c.askSnapshot(in)
	}
}

// whole reports whether the book is known whole: a W applied, no hole since, not said
// stale, no disconnection since.
func (in *cInst) whole() bool { return in.synced && !in.stale && !in.suspect }

// suspect marks a whole book stale after a disconnection without forgetting its RptSeq:
// a W at least as new, or an X that follows it, makes it whole again, and an older W
// (the cache's, written before the disconnection) is refused as before.
func (c *Consumer) suspect(in *cInst) {
	if !in.synced || in.suspect {
		return
	}
	in.suspect = true
	if in.book != nil {
		in.book.SetStale(true)
	}
	c.publish(in, feed.Event{Kind: feed.EventStale, Symbol: in.symbol, Book: in.book})
}

// unsync marks the book not whole: its subscribers get a stale event, and a W is asked
// for.
func (c *Consumer) unsync(in *cInst, ask bool) {
	if in.synced {
		in.synced = false
		c.stats.synced.Add(-1)
	}
	in.suspect = false
	if in.book != nil {
		in.book.SetStale(true)
	}
	c.publish(in, feed.Event{Kind: feed.EventStale, Symbol: in.symbol, Book: in.book})
	if ask && time.Since(in.askedAt) >= resyncEvery {
		c.askSnapshot(in)
	}
}

// askSnapshot reads the instrument's W from the last-value cache again and asks the
// publishers for a fresh one.
func (c *Consumer) askSnapshot(in *cInst) {
	in.askedAt = time.Now()
	if !c.cfg.NoSnapRequests {
		if err := c.nc.Publish(Subject(PrefixSnapRequest, in.channel, in.symbol), nil); err == nil {
			c.stats.snapRequests.Add(1)
		}
	}
	subj := in.snapSubj
	go c.directGet(context.Background(), subj)
}
