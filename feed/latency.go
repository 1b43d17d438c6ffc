package feed

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Stage is one step of an incremental's way from the publisher to the subscribers. Each
// has a latency histogram, in nanoseconds, per channel and over all channels.
type Stage int

// The stages, in order. Wire, Decode, Book and Subscribers add up to Total for a message
// read from a socket in sequence (Total ends with the hand-off, when one is timed). Book
// runs to the book update of the message's last entry (the hand-offs of its earlier
// entries included), Subscribers is the hand-off of that last entry; a message whose last
// entry is handed to no subscriber counts in Book up to the end and not in Subscribers. A
// message taken from the out-of-order buffer or from recovery, or read with fault
// injection on (Config.Inject), has no kernel time of its own: it counts in Book,
// Subscribers and Total only. An engine that no Handler runs (replay) records Total alone, on the
// capture's clock. A Handler records Total for every message and the other stages for one
// incremental in Config.StageEvery of each channel's.
const (
	StageWire        Stage = iota // publisher SendingTime (52) -> kernel receive time (SO_TIMESTAMPNS)
	StageDecode                   // kernel receive -> message decoded (wakeup, recvmmsg, sequencing, decode); split by DecodeSplit
	StageBook                     // decoded -> the last entry applied to its book
	StageSubscribers              // the last entry handed to the subscribers (their callbacks)
	StageTotal                    // tick-to-handler: SendingTime -> entries applied and published
	NumStages
)

var stageNames = [NumStages]string{"send->kernel rx", "kernel rx->decoded", "decoded->book", "book->subscribers", "tick-to-handler"}

// String returns the stage's name, as the reports print it.
func (s Stage) String() string {
	if s < 0 || s >= NumStages {
		return "stage?"
	}
	return stageNames[s]
}

// Latencies are the histograms of the stages, in nanoseconds, from 1 ns to 10 s.
type Latencies [NumStages]*hdrhistogram.Histogram

const (
	maxLatency    = int64(10 * time.Second)
	overallDigits = 3 // significant figures of the handler-wide histograms (0.1%)
	channelDigits = 2 // of each channel's (1%): 28 KiB per histogram instead of 200 KiB
)

// newLatencies returns a stage's histograms; with prefault, their pages written once
// (Reset). A channel's five take 140 KiB that the allocator may hand over untouched, and
// the first value recorded in each 4 KiB of them faults on the receiving thread, holding
// up the datagrams behind it (the bench at 10k msgs/s over 256 channels, busy polling:
// 1000-2700 faults in a 3 s round, 160-350 with the pages written). Written, they are
// resident at once, where untouched most never are (a channel's latencies fill a few
// pages): a busy-polling handler, which spends a CPU on latency, pays that memory; the
// default mode does not.
func newLatencies(digits int, prefault bool) *Latencies {
	var l Latencies
	for i := range l {
		l[i] = hdrhistogram.New(1, maxLatency, digits)
		if prefault {
			prefaulted(l[i])
		}
	}
	return &l
}

// DefaultStageEvery is Config.StageEvery's default: the stages of one incremental in 8
// of each channel's are timed.
const DefaultStageEvery = 8

// stageClock holds the timestamps of the incremental being applied. Reading the clock
// costs tens of nanoseconds (near 100 on a loaded VM), and a message's path is a few
// hundred, so a live engine reads it as little as it can:
//
//   - once per read, Run's (its wall and monotonic clocks: base); every later reading in
//     that read's batch is base plus the monotonic time since (time.Since: one clock,
//     where time.Now reads two);
//   - once per message, at its end (tick-to-handler);
//   - and, for the messages whose stages are sampled (Config.StageEvery, counted per
//     channel so that each channel's breakdown has its share), twice more: when decoded
//     and when the hand-off of the last entry begins; the end of that hand-off is the
//     message's end.
type stageClock struct {
	base      time.Time // the clock read of the read being handled (Run's); zero outside Run
	baseNs    int64     // the same in nanoseconds since the epoch
	rx        int64     // kernel receive time of the datagram being handled; 0 if unknown
	recv      int64     // when the read that returned it (recvmmsg) returned; 0 if unknown
	decodedNs int64     // when the incremental being applied was decoded; 0 when its stages are not timed
	last      bool      // the entry being applied is the message's last, and its stages are timed
	book      int64     // decoded -> last entry's book update, if its hand-off was timed
	subs      int64     // duration of the last entry's hand-off, if timed; else 0
	end       int64     // when that hand-off ended (ns since the epoch), if timed; else 0
}

// setBase sets the clock read of the read whose datagrams come next: Run calls it once
// per read, so that the readings of its messages cost one monotonic clock each.
func (e *Engine) setBase(t time.Time) {
	e.clock.base, e.clock.baseNs = t, t.UnixNano()
}

// clockNow returns the wall time in nanoseconds since the epoch: the read's clock plus
// the monotonic time since, or the clock itself outside Run.
func (e *Engine) clockNow() int64 {
	c := &e.clock
	if c.baseNs == 0 {
		return time.Now().UnixNano()
	}
	return c.baseNs + int64(time.Since(c.base))
}

// beginStages starts timing an incremental of ch that has just been decoded, if its
// stages are sampled (one in Config.StageEvery of the channel's).
func (e *Engine) beginStages(ch *channel) {
	c := &e.clock
	c.decodedNs, c.book, c.subs, c.end = 0, 0, 0, 0
	if !e.live {
		return
	}
	if ch.stageTick++; ch.stageTick < e.cfg.StageEvery {
		return
	}
	ch.stageTick = 0
	c.decodedNs = e.clockNow()
}

// beginHandOff and endHandOff time the subscriber callbacks of a message's last entry,
// when its stages are timed.
func (e *Engine) beginHandOff() bool {
	if !e.clock.last {
		return false
	}
	e.clock.book = e.clockNow() - e.clock.decodedNs
	return true
}

func (e *Engine) endHandOff() {
	c := &e.clock
	c.end = e.clockNow()
	c.subs = max(c.end-c.decodedNs-c.book, 1)
}

// stamp is the timestamps of one applied message, as recordStamp records them.
type stamp struct {
	ch                                       *channel
	sent, now, rx, recv, decoded, book, subs int64
}

// pendingStamps is how many messages' timestamps a live engine holds before recording
// them. Recording touches a dozen histograms (cache misses: a third of the handler's work
// per message, in the profile of the bench at 100k msgs/s), so it is kept off the path
// of the datagrams: stamps are recorded when the receiving loop is idle (Run; a
// busy-polling Run records one message's per empty turn once the line is quiet,
// recordHeld), before commands
// run (their functions may read the histograms, Do), when the queue is full, and when
// the histograms or counters are read.
const pendingStamps = 256

// takeStamp takes the clock of the message sent at sent and done at now, and clears it:
// messages drained after this one were not in this datagram.
func (e *Engine) takeStamp(ch *channel, sent, now int64) stamp {
	c := &e.clock
	st := stamp{ch: ch, sent: sent, now: now, rx: c.rx, recv: c.recv, decoded: c.decodedNs, book: c.book, subs: c.subs}
	c.rx, c.recv, c.decodedNs, c.book, c.subs, c.end = 0, 0, 0, 0, 0, 0
	return st
}

// flushStages records the stamps held. Call it on the engine's goroutine.
func (e *Engine) flushStages() {
	for i := range e.pending[:e.npending] {
		e.recordStamp(&e.pending[i])
		e.pending[i].ch = nil
	}
	e.npending = 0
}

// recordHeld records the stamps of one held message, the latest (the histograms do not
// care about order), if any. A busy-polling Run calls it on each empty turn once the line
// has been quiet for quietTurns, or while half the queue is full: a message's dozen
// histograms cost about a microsecond, so a datagram that arrives meanwhile waits that
// long at most, where a flush of the whole queue in an idle moment of a burst kept the
// rest of the burst waiting for hundreds, and so did a queue that filled at a steady rate
// (100k msgs/s, a datagram every few turns, never quiet for quietTurns).
func (e *Engine) recordHeld() {
	if e.npending == 0 {
		return
	}
	e.npending--
	st := &e.pending[e.npending]
	e.recordStamp(st)
	st.ch = nil
}

// recordStages records the stages of a stamp.
func (e *Engine) recordStages(st *stamp) {
	ch := st.ch
	rx, recv, decoded, book, subs, sent, now := st.rx, st.recv, st.decoded, st.book, st.subs, st.sent, st.now
	if !e.live || ch.lat == nil {
		return
	}
	recordClamped(ch.lat[StageTotal], now-sent) // every message's; the handler-wide one is e.latency
	if decoded == 0 {
		return // its stages were not sampled
	}
	record := func(s Stage, d int64) {
		recordClamped(e.stages[s], d)
		recordClamped(ch.lat[s], d)
	}
	if rx > 0 {
		record(StageWire, rx-sent)
		record(StageDecode, decoded-rx)
		if recv > 0 {
			recordClamped(e.split.Received, recv-rx)
			recordClamped(e.split.Work, decoded-recv)
		}
	}
	if subs > 0 {
		record(StageBook, book)
		record(StageSubscribers, subs)
	} else {
		record(StageBook, now-decoded) // nothing was handed off
	}
}

// recordClamped records d, clamped to the histogram's range.
func recordClamped(hist *hdrhistogram.Histogram, d int64) {
	_ = hist.RecordValue(min(max(d, 0), hist.HighestTrackableValue()))
}

// DecodeSplit is StageDecode (kernel rx->decoded) of the handler-wide histograms cut in
// two at the return of the read (recvmmsg) that handed the datagram to the handler:
// Received, kernel rx->received, is the time the datagram waited in the kernel's socket
// queue before the receiver's read returned it (the receiver's wakeup or its next turn,
// and the read itself); Work, received->decoded, is the handler's own work on its batch up
// to this message's decode (the datagrams before it in the batch, sequencing, decode).
// For each message, Received + Work = its StageDecode. Nanoseconds, 3 significant figures.
type DecodeSplit struct {
	Received *hdrhistogram.Histogram // kernel rx -> recvmmsg returned
	Work     *hdrhistogram.Histogram // recvmmsg returned -> decoded
}

func newDecodeSplit() DecodeSplit {
	return DecodeSplit{Received: prefaulted(hdrhistogram.New(1, maxLatency, overallDigits)),
		Work: prefaulted(hdrhistogram.New(1, maxLatency, overallDigits))}
}

// prefaulted writes h's counts (Reset zeroes them) so that their pages are mapped now,
// not by the first value recorded in each.
func prefaulted(h *hdrhistogram.Histogram) *hdrhistogram.Histogram {
	h.Reset()
	return h
}

// DecodeSplit returns the split of the handler-wide StageDecode; it is recorded only for
// datagrams read by a Handler (with a kernel receive time), for the sample whose stages
// are timed (Config.StageEvery). Read it after Run returns, or
// through Do.
func (e *Engine) DecodeSplit() DecodeSplit {
	e.flushStages()
	return e.split
}

// StageLatency returns the handler-wide stage histograms (nanoseconds, 3 significant
// figures); its StageTotal is Latency. Read them after Run returns, or through Do.
func (e *Engine) StageLatency() *Latencies {
	e.flushStages()
	return e.stages
}

// ChannelLatency returns each channel's stage histograms (nanoseconds, 2 significant
// figures), by channel name. Read them after Run returns, or through Do.
func (e *Engine) ChannelLatency() map[string]*Latencies {
	e.flushStages()
	out := make(map[string]*Latencies, len(e.channels))
	for name, ch := range e.channels {
		out[name] = ch.lat
	}
	return out
}
