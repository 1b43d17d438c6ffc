package feed

import "fastfeed/gap"

// Cache warming. A busy-polling Run spends the time between datagrams in recvmmsg, and at
// 10k msgs/s over 256 channels a channel's next datagram comes some 25 ms after its last:
// by then its sequencer, its copy digests, its instruments and their books have left the
// core's caches, and the datagram pays for the misses (bench --busy-poll at 10k msgs/s:
// received->decoded and decoded->book together about 1.3 µs cold, 0.5 µs warm). So every
// warmEvery empty turns Run touches the state one followed instrument's next datagram will
// read, round robin over the channels and their instruments: read-only, on the engine's
// goroutine, a few cache lines a turn, never in the turns right after a datagram (its
// burst may go on). At a few hundred turns a millisecond every instrument is touched every
// millisecond or two, as 100k msgs/s would touch it. Config.NoWarm turns it off.

// warmEvery is how many empty turns a busy-polling Run makes between two touches: a touch
// lengthens its turn by up to a few hundred nanoseconds (the lines it brings in are
// cold), and a datagram that arrives meanwhile waits that much longer.
const warmEvery = 4

// warmCursor is where the round robin of warmNext stands.
type warmCursor struct {
	sock int    // socket index of the channel (its line A)
	inst int    // the channel's next instrument to touch
	sink uint64 // the reads' results, so that they are not optimized away
}

// warmNext touches one followed instrument's state and its channel's, the next in turn,
// and returns the instrument (nil if none is followed). It changes nothing that a
// datagram or a reader of the engine could see.
func (e *Engine) warmNext() *instrument {
	w := &e.warm
	for range len(e.sockets) {
		if w.sock >= len(e.sockets) { // sockets left since the last turn
			w.sock, w.inst = 0, 0
		}
		si := e.sockets[w.sock]
		ch := si.ch
		if ch == nil || si.defs || si.snap || si.line != gap.LineA || w.inst >= len(ch.instruments) {
			w.sock, w.inst = w.sock+1, 0
			continue
		}
		i := ch.tracker.Next() % copiesLen
		s := ch.tracker.Touch() + ch.copies.sum[i] + uint64(ch.copies.seq[i])
		in := ch.instruments[w.inst]
		s += uint64(in.rptSeq) + uint64(len(in.symbol)) + uint64(len(in.subs))
		if len(in.symbol) > 0 {
			s += uint64(in.symbol[0])
		}
		if len(ch.instruments) > 1 {
			_ = e.bySymbol[in.symbol] // the lookup entry makes on such a channel
		}
		if in.book != nil {
			s += uint64(in.book.Touch())
		}
		w.sink += s
		if w.inst++; w.inst >= len(ch.instruments) {
			w.sock, w.inst = w.sock+1, 0
		}
		return in
	}
	return nil
}
