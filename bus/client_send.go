package bus

import (
	"github.com/quickfixgo/quickfix"

	"fastfeed/md"
)

// sendPending sends a W queued by a request or a conflation (and the stale status of a
// stale book after it).
func (c *client) sendPending(q queued) {
	if q.req.cancelled.Load() {
		return
	}
	c.sendSnapshot(q.req, q.snap, q.at)
	if q.stale {
		c.sendStale(q.req, string(q.snap.Symbol))
	}
}

func (c *client) sendSnapshot(r *request, snap *md.Snapshot, at int64) {
	msg := md.SnapshotToFIX(snap, md.ApplFields{MDReqID: r.id})
	msg.Body.SetInt(TagPublishTime, int(at))
	c.send(msg)
	c.snapshots.Add(1)
}

func (c *client) sendStale(r *request, symbol string) {
	c.send(md.StatusToFIX(&md.Status{Symbol: []byte(symbol), TradingStatus: StaleTradingStatus, Text: []byte(StaleText)},
		md.ApplFields{MDReqID: r.id}))
}

// sendQueued sends the message at the head of the ring: a W, an f, or an X of up to
// MaxBatch consecutive entries of one request.
func (c *client) sendQueued() {
	it := c.ring.At(0)
	r := it.req
	if r.cancelled.Load() {
		c.ring.Pop(1)
		return
	}
	switch it.kind {
	case itemSnapshot:
		snap, at := it.snap, it.at
		c.ring.Pop(1)
		c.sendSnapshot(r, snap, at)
	case itemStale:
		sym := it.symbol
		c.ring.Pop(1)
		c.sendStale(r, sym)
	case itemStatus:
		m := md.Status{Symbol: []byte(it.symbol), TradingStatus: it.status}
		c.ring.Pop(1)
		c.send(md.StatusToFIX(&m, md.ApplFields{MDReqID: r.id}))
	case itemEntry:
		at := it.at
		n := min(c.ring.Len(), c.b.cfg.MaxBatch)
		c.entries = c.entries[:0]
		k := 0
		for ; k < n; k++ {
			e := c.ring.At(k)
			if e.kind != itemEntry || e.req != r {
				break
			}
			var id []byte
			if e.idLen > 0 {
				id = append([]byte(nil), e.id[:e.idLen]...)
			}
			c.entries = append(c.entries, md.Entry{Action: e.action, Type: e.typ, Symbol: []byte(e.symbol), RptSeq: e.rptSeq,
				ID: id, Price: e.price, Size: e.size, Orders: e.orders})
		}
		c.ring.Pop(k)
		msg := md.IncrementalToFIX(&md.Incremental{Entries: c.entries}, md.ApplFields{MDReqID: r.id})
		msg.Body.SetInt(TagPublishTime, int(at))
		c.send(msg)
		c.nEntries.Add(uint64(k))
	}
}

// send hands msg to the session, counting it against MaxInFlight.
func (c *client) send(msg *quickfix.Message) {
	if err := c.b.acc.Send(c.id, msg); err != nil {
		return // the session ended; onLogout cleans up
	}
	c.handed++
	c.messages.Add(1)
}
