package feed

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"time"

	"fastfeed/gap"
	"fastfeed/mcast/dgauth"
)

// Datagram authentication and the comparison of the copies of one sequence number: the
// checks a datagram meets before the sequence tracker (receive calls authenticate first,
// and sameCopy just before the tracker).

// authenticate checks the trailer of datagram b from socket si when the handler has a
// key, and returns the datagram without it. A datagram that fails is counted
// (auth_failures) and logged at most once a second; ok is false and it must be dropped.
// Without a key b is returned as it is.
func (e *Engine) authenticate(si socketInfo, b []byte) (payload []byte, ok bool) {
	if e.key == nil {
		return b, true
	}
	lineA := e.addrs[e.defsSocket]
	name := "definitions"
	if si.ch != nil {
		lineA, name = si.ch.addr, si.ch.name
		if si.snap {
			lineA, name = si.ch.snap.addr, si.ch.name+" snapshot channel"
		}
	}
	p, err := e.key.Open(lineA, b)
	if err != nil {
		e.stats.AuthFailures++
		if n, ok := e.authLog.allow(e.now); ok {
			e.log.Debug(fmt.Sprintf("channel %s line %s: datagram of %d bytes refused: %v%s", name, lineName(si.line), len(b), err, more(n)))
		}
		return nil, false
	}
	// The tag already digests the datagram: its first 8 bytes stand for it in copies.
	e.digest = binary.LittleEndian.Uint64(b[len(b)-dgauth.TagLen:])
	return p, true
}

func lineName(l gap.Source) string {
	if l == gap.LineB {
		return "B"
	}
	return "A"
}

// copies remembers a 64-bit digest of the copy taken of each of a channel's last
// copiesLen sequence numbers, so that a later copy of one of them (from the other line,
// or any repeat) that differs is noticed: one of the two is not what the publisher sent.
const copiesLen = 128

type copyRing struct {
	seq  [copiesLen]uint32
	sum  [copiesLen]uint64
	used [copiesLen]bool
}

// differs reports whether a copy of seq with digest sum was taken and differs from it.
func (r *copyRing) differs(seq uint32, sum uint64) bool {
	i := seq % copiesLen
	return r.used[i] && r.seq[i] == seq && r.sum[i] != sum
}

// add records the copy of seq taken.
func (r *copyRing) add(seq uint32, sum uint64) {
	i := seq % copiesLen
	r.seq[i], r.sum[i], r.used[i] = seq, sum, true
}

// clear forgets every copy (a sequence reset reuses the numbers).
func (r *copyRing) clear() { r.used = [copiesLen]bool{} }

// datagramDigest returns the digest of datagram b for the copy ring: the tag's when the
// engine authenticated it, else a keyed hash of its bytes.
func (e *Engine) datagramDigest(b []byte) uint64 {
	if e.key != nil {
		return e.digest
	}
	return maphash.Bytes(e.seed, b)
}

// sameCopy reports whether datagram b (sequence seq, from a line of ch) agrees with the
// copy of seq already taken, if any. A copy that differs is counted (ab_mismatch), logged
// at most once a second, and the channel's books are marked stale and rebuilt from
// snapshots: which of the two copies is the publisher's cannot be told, and the first may
// already be applied. The caller drops it.
func (e *Engine) sameCopy(ch *channel, line gap.Source, seq uint32, sum uint64, now int64) bool {
	if !ch.copies.differs(seq, sum) {
		return true
	}
	e.stats.ABMismatch++
	if n, ok := e.copyLog.allow(now); ok {
		e.log.Debug(fmt.Sprintf("channel %s seq %d: the copy from line %s differs from the one taken: books marked stale, snapshots requested%s",
			ch.name, seq, lineName(line), more(n)))
	}
	e.staleChannel(ch, "two different copies of one sequence number")
	ch.tracker.NeedSnapshot(now)
	e.activate(ch)
	return false
}

// more says how many were not logged since the last report, if any.
func more(suppressed uint64) string {
	if suppressed == 0 {
		return ""
	}
	return fmt.Sprintf(" (and %d more since the last report, not logged)", suppressed)
}

// rateLog lets a cause log once per interval and counts what it suppressed meanwhile.
type rateLog struct {
	last       int64
	logged     bool
	suppressed uint64
}

const rateLogEvery = int64(time.Second)

// allow reports whether to log at now, and how many were suppressed since the last log.
func (r *rateLog) allow(now int64) (suppressed uint64, ok bool) {
	if r.logged && now-r.last < rateLogEvery && now >= r.last {
		r.suppressed++
		return 0, false
	}
	n := r.suppressed
	r.last, r.logged, r.suppressed = now, true, 0
	return n, true
}
