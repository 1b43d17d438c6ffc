package gap

import (
	"encoding/binary"
	"testing"
	"time"
)

// FuzzTracker drives a tracker with arbitrary operations and sequence numbers (absurd
// jumps, wraps, resets, snapshots at any number) and checks its invariants: delivery is
// strictly consecutive, the buffer never exceeds its window, and nothing panics.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 1, 2, 0, 0, 0, 2, 9, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const window = 32
		tr := New(Config{Window: window, GapWait: time.Millisecond, MaxRequest: 64})
		var now int64
		var last uint32
		haveLast := false
		check := func(seq uint32) {
			if haveLast && seq != last+1 {
				t.Fatalf("delivered %d after %d", seq, last)
			}
			last, haveLast = seq, true
		}
		for len(ops) >= 5 {
			op, n := ops[0], binary.LittleEndian.Uint32(ops[1:5])
			ops = ops[5:]
			now += int64(time.Millisecond)
			switch op % 8 {
			case 0, 1, 2:
				if tr.Offer(n, Source(op%3), []byte{byte(n)}, now) == Deliver {
					check(n)
				}
				for {
					s, p, ok := tr.Pop()
					if !ok {
						break
					}
					if p[0] != byte(s) {
						t.Fatalf("payload of %d is %d", s, p[0])
					}
					check(s)
				}
			case 3:
				tr.Heartbeat(n, now)
			case 4:
				tr.SnapshotApplied(n)
				haveLast = false // a snapshot may move the numbering anywhere forward
			case 5:
				tr.Reset(n)
				haveLast = false
			case 6:
				tr.Poll(now)
			case 7:
				tr.RecoveryFailed(now)
			}
			if tr.Buffered() > window || len(tr.slots) > window {
				t.Fatalf("buffer %d / %d slots over window %d", tr.Buffered(), len(tr.slots), window)
			}
		}
	})
}
