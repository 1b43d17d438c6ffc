package feed

import "fastfeed/gap"

// Cache warming. A busy-polling Run spends the time between datagrams in recvmmsg, and at
// 10k msgs/s over 256 channels a channel's next datagram comes some 25 ms after its last:
// by then its sequencer, its copy digests, its instruments and their books have left the
// core's caches, and the datagram pays for the misses (bench --busy-poll at 10k msgs/s:
// received->decoded and decoded->book together about 1.3 µs cold, 0.5 µs warm). On this
// VM time alone evicts them: 100 µs of spinning on the clock, no syscall, left a datagram's
// handling as cold as 60 empty reads did (BenchmarkColdDatagram). So every warmEvery
// empty turns Run touches the state one followed instrument's next datagram will read,
// round robin over the channels and their instruments (warmNext), and decodes the last
// incremental again (warmDecode): read-only as far as anyone can see, on the engine's
// goroutine, a few cache lines and a decode a turn, never in the turns right after a
// datagram (its burst may go on). Config.NoWarm turns it off.

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
		if ch.copies.used[i] { // sameCopy reads all three
			s++
		}
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

// warmDecode decodes the last incremental received again, with the engine's codec, into
// its scratch message: the decoder's code and state stay in the cache as the channels'
// state does (BenchmarkColdDatagram: a cold datagram's handling p50 as with warmNext
// alone, its p90 60-150 ns lower; the bench's received->decoded about 0.05 µs lower).
// Nothing reads the codec's output between two datagrams (each decode resets its
// dictionary, and the engine takes what it keeps out of the output at once), so decoding
// again changes nothing. The body is copied here, in an idle turn, from the read's
// buffer, which lastInc aliases until the next read (Run's reads only: Receive forgets
// it, the caller's buffer).
func (e *Engine) warmDecode() {
	if e.lastInc != nil {
		e.warmBody = append(e.warmBody[:0], e.lastInc...)
		e.lastInc = nil
	}
	if len(e.warmBody) > 0 {
		_, _ = e.codec.Decode(e.warmBody)
	}
}
