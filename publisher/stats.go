package publisher

import (
	"sync/atomic"
	"time"
)

// Stats counts what a Publisher has sent. Datagrams and Bytes count line A
// only (line B repeats them).
type Stats struct {
	Datagrams    uint64 // datagrams of every kind, preamble included in Bytes
	Bytes        uint64
	Incrementals uint64 // X messages (one per datagram)
	Splits       uint64 // incrementals marked Continued (parts of a split update)
	Entries      uint64 // MD entries in the incrementals
	Events       uint64 // simulator events after the opening books
	Definitions  uint64
	Statuses     uint64
	Heartbeats   uint64
	Resets       uint64
	DataTime     time.Duration // length of the data phase, once it ended
	// MaxLag is the most the paced sending fell behind its schedule (with a rate):
	// how late the latest datagram due went out. Recovery requests are served on the
	// sending goroutine between batches; this is what shows whether they stall it.
	MaxLag time.Duration
	// The snapshot channels (snapchan.go): W datagrams and their bytes, full cycles of
	// every instrument, and W over the payload limit, not sent.
	SnapshotDatagrams, SnapshotBytes, SnapshotCycles, SnapshotOversize uint64
	// SourceErrors counts a Source's levels its ground-truth book refused (beyond the
	// book's capacity): not published.
	SourceErrors uint64
	// Skipped are incrementals not sent because they were due more than Config.MaxLag ago.
	Skipped uint64
}

// sharedStats is Stats as atomics, published by the loop once per iteration.
type sharedStats struct {
	v [18]atomic.Uint64
}

func (s *sharedStats) publish(st *Stats) {
	for i, x := range [...]uint64{st.Datagrams, st.Bytes, st.Incrementals, st.Splits, st.Entries, st.Events,
		st.Definitions, st.Statuses, st.Heartbeats, st.Resets, uint64(st.DataTime), uint64(st.MaxLag),
		st.SnapshotDatagrams, st.SnapshotBytes, st.SnapshotCycles, st.SnapshotOversize, st.SourceErrors, st.Skipped} {
		s.v[i].Store(x)
	}
}

// Stats returns the counters as of the last loop iteration.
func (p *Publisher) Stats() Stats {
	v := &p.shared.v
	return Stats{Datagrams: v[0].Load(), Bytes: v[1].Load(), Incrementals: v[2].Load(), Splits: v[3].Load(),
		Entries: v[4].Load(), Events: v[5].Load(), Definitions: v[6].Load(), Statuses: v[7].Load(),
		Heartbeats: v[8].Load(), Resets: v[9].Load(), DataTime: time.Duration(v[10].Load()),
		MaxLag: time.Duration(v[11].Load()), SnapshotDatagrams: v[12].Load(), SnapshotBytes: v[13].Load(),
		SnapshotCycles: v[14].Load(), SnapshotOversize: v[15].Load(), SourceErrors: v[16].Load(), Skipped: v[17].Load()}
}
