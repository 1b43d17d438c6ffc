package feed

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
)

// boundedRecovery serves retransmissions of at most maxRange numbers from the script's
// record, like the publisher's recovery service, refuses larger ones, and serves
// snapshots of the script's ground truth.
type boundedRecovery struct {
	s    *script
	sink Sink

	mu          sync.Mutex
	retransmits [][2]uint32
	refused     int
	snapshots   int
}

const maxRange = 1000

func (r *boundedRecovery) Start(sink Sink) { r.sink = sink }

func (r *boundedRecovery) Retransmit(channel string, beg, end uint32) {
	r.mu.Lock()
	r.retransmits = append(r.retransmits, [2]uint32{beg, end})
	refuse := end < beg || end-beg >= maxRange
	if refuse {
		r.refused++
	}
	r.mu.Unlock()
	go func() {
		if refuse {
			r.sink.Failed(channel, false, "range too large")
			return
		}
		for seq := beg; seq <= end; seq++ {
			m, err := r.s.message(channel, seq)
			if err != nil {
				r.sink.Failed(channel, false, err.Error())
				return
			}
			r.sink.Retransmitted(channel, seq, m)
		}
	}()
}

func (r *boundedRecovery) Snapshot(channel string, symbols []string) {
	r.mu.Lock()
	r.snapshots++
	r.mu.Unlock()
	var snaps []md.Snapshot
	for _, sym := range symbols {
		snaps = append(snaps, r.s.snapshot(sym))
	}
	go r.sink.Snapshots(channel, snaps)
}

// withTemplateID returns datagram d (preamble, presence map, template ID, ...) with its
// template ID replaced by id.
func withTemplateID(t *testing.T, d []byte, id uint64) []byte {
	t.Helper()
	i := 4
	for d[i]&0x80 == 0 { // presence map
		i++
	}
	i++
	j := i
	for d[j]&0x80 == 0 { // template ID
		j++
	}
	j++
	var enc []byte
	for v := id; ; v >>= 7 {
		enc = append([]byte{byte(v & 0x7f)}, enc...)
		if v < 0x80 {
			break
		}
	}
	enc[len(enc)-1] |= 0x80
	out := append([]byte(nil), d[:i]...)
	out = append(out, enc...)
	return append(out, d[j:]...)
}

// bogus returns a valid incremental for symbol with preamble and MsgSeqNum seq whose
// entry (a bid at 0.01) is in no ground truth: if a book shows it, the handler took it.
func (s *script) bogus(t *testing.T, symbol string, seq uint32) []byte {
	t.Helper()
	e := md.Entry{Action: md.New, Type: md.Bid, Symbol: []byte(symbol), RptSeq: s.rpt[symbol] + 1,
		Price: md.Dec(1, -2), Size: md.Dec(7, 0), Orders: 1}
	d := binary.LittleEndian.AppendUint32(nil, seq)
	d, err := s.codec.AppendIncremental(d, &md.Incremental{Header: md.Header{SeqNum: seq}, Entries: []md.Entry{e}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBadDatagrams hands an engine a valid stream on two channels with bad
// datagrams on SBER's channel among it, and checks for each which counters move and
// that the books end equal to the ground truth. A bad datagram in place of a real one
// (the real one lost) must not take its sequence number: the FIX retransmission fills
// it. A bad copy followed by the real one must leave the real one to be applied.
func TestBadDatagrams(t *testing.T) {
	const before, after = 10, 10 // updates per symbol before and after the bad input
	type ctx struct {
		s    *script
		next uint32 // SBER's channel: the next sequence number, made but not yet handed
		real []byte // the datagram of next
	}
	tests := []struct {
		name string
		// bad returns the bad datagrams for SBER's channel, and whether the real datagram
		// of next is lost (else it is handed after them).
		bad  func(t *testing.T, c ctx) (bad [][]byte, lost bool)
		want func(d Stats) bool // counter deltas
		what string
	}{
		{"random bytes in place of a datagram", func(t *testing.T, c ctx) ([][]byte, bool) {
			r := rand.New(rand.NewPCG(1, 2))
			b := binary.LittleEndian.AppendUint32(nil, c.next)
			for range 60 {
				b = append(b, byte(r.Uint32()))
			}
			return [][]byte{b}, true
		}, func(d Stats) bool { return d.DecodeErrors == 1 && d.RecoveredFIX == 1 }, "decode_errors 1, recovered_fix 1"},
		{"random bytes with a random preamble", func(t *testing.T, c ctx) ([][]byte, bool) {
			r := rand.New(rand.NewPCG(3, 4))
			var bad [][]byte
			for range 20 {
				b := make([]byte, 1+r.IntN(200))
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				bad = append(bad, b)
			}
			return bad, false
		}, func(d Stats) bool { return d.DecodeErrors >= 1 && d.DecodeErrors <= 20 }, "decode_errors 1..20"},
		{"truncated copy, then the real one", func(t *testing.T, c ctx) ([][]byte, bool) {
			return [][]byte{c.real[:len(c.real)/2]}, false
		}, func(d Stats) bool { return d.DecodeErrors == 1 && d.Gaps == 0 }, "decode_errors 1, no gap"},
		{"truncated in place of a datagram", func(t *testing.T, c ctx) ([][]byte, bool) {
			return [][]byte{c.real[:len(c.real)-1]}, true
		}, func(d Stats) bool { return d.DecodeErrors == 1 && d.RecoveredFIX == 1 }, "decode_errors 1, recovered_fix 1"},
		{"wrong template ID, then the real one", func(t *testing.T, c ctx) ([][]byte, bool) {
			return [][]byte{withTemplateID(t, c.real, 9999)}, false
		}, func(d Stats) bool { return d.DecodeErrors == 1 && d.Gaps == 0 }, "decode_errors 1, no gap"},
		{"shorter than the preamble", func(t *testing.T, c ctx) ([][]byte, bool) {
			return [][]byte{{1, 2, 3}, {}}, false
		}, func(d Stats) bool { return d.DecodeErrors == 2 && d.Gaps == 0 }, "decode_errors 2, no gap"},
		{"preamble alone", func(t *testing.T, c ctx) ([][]byte, bool) {
			return [][]byte{binary.LittleEndian.AppendUint32(nil, c.next)}, false
		}, func(d Stats) bool { return d.DecodeErrors == 1 && d.Gaps == 0 }, "decode_errors 1, no gap"},
		{"sequence 2^32-1 with a valid body", func(t *testing.T, c ctx) ([][]byte, bool) {
			return [][]byte{c.s.bogus(t, "SBER", 1<<32-1)}, false
		}, func(d Stats) bool { return d.DecodeErrors == 0 && d.Dropped+d.Duplicates == 1 && d.Gaps == 0 }, "dropped or duplicates 1, no gap"},
		{"a jump of 2^31 with a valid body", func(t *testing.T, c ctx) ([][]byte, bool) {
			return [][]byte{c.s.bogus(t, "SBER", c.next+1<<31)}, false
		}, func(d Stats) bool { return d.DecodeErrors == 0 && d.Dropped+d.Duplicates == 1 && d.Gaps == 0 }, "dropped or duplicates 1, no gap"},
		{"a jump of 2^31-1 with a valid body", func(t *testing.T, c ctx) ([][]byte, bool) {
			return [][]byte{c.s.bogus(t, "SBER", c.next+1<<31-1)}, false
		}, func(d Stats) bool { return d.DecodeErrors == 0 && d.Dropped+d.Duplicates == 1 && d.Gaps == 0 }, "dropped or duplicates 1, no gap"},
		{"a jump of 5000 with a valid body", func(t *testing.T, c ctx) ([][]byte, bool) {
			return [][]byte{c.s.bogus(t, "SBER", c.next+5000)}, false
		}, func(d Stats) bool { return d.DecodeErrors == 0 && d.Dropped == 1 && d.Gaps == 0 }, "dropped 1 (beyond the 4096 window), no gap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t)
			syms := []string{"SBER", "GAZP"}
			rec := &boundedRecovery{s: s}
			h, err := NewEngine(Config{Topics: syms, Templates: templates(t), Port: port, Recovery: rec})
			if err != nil {
				t.Fatal(err)
			}
			var now int64 = 1e9
			hand := func(dst netip.AddrPort, d []byte) {
				t.Helper()
				if !h.Receive(dst, d, now) {
					t.Fatalf("Receive refused %v", dst)
				}
				now += 1000
				h.DoWork(now)
			}
			update := func(i int) (sberSeq uint32) {
				for j, sym := range syms {
					seq := s.update(sym, md.New, md.Bid, int64(10000+j*100+i), int64(10+i))
					if sym == "SBER" {
						sberSeq = seq
						continue
					}
					hand(channelOf(sym), s.sent[mcast.ChannelName(channelOf(sym))][seq])
				}
				return sberSeq
			}
			sber := mcast.ChannelName(channelOf("SBER"))
			for i := range before {
				seq := update(i) // before the map lookup: update creates the channel's map
				hand(channelOf("SBER"), s.sent[sber][seq])
			}
			st0 := h.Stats()
			seq := update(before)
			c := ctx{s: s, next: seq, real: s.sent[sber][seq]}
			bad, lost := tt.bad(t, c)
			for _, d := range bad {
				hand(channelOf("SBER"), d)
			}
			if !lost {
				hand(channelOf("SBER"), c.real)
			}
			for i := before + 1; i < before+after; i++ {
				seq := update(i)
				hand(channelOf("SBER"), s.sent[sber][seq])
			}
			// Past the gap wait (5 ms), then until recovery ends: the answers come from
			// another goroutine, the handler's clock runs with the wall clock meanwhile.
			for i := 0; i < 20 || h.Recovering(); i++ {
				if i > 5000 {
					t.Fatalf("recovery did not end: channels %+v, recovery %d retransmits %v, %d refused, %d snapshots",
						h.Channels(), len(rec.retransmits), rec.retransmits, rec.refused, rec.snapshots)
				}
				time.Sleep(time.Millisecond)
				now += int64(time.Millisecond)
				h.DoWork(now)
			}
			h.DoWork(now)
			if diff := book.DiffDumps(h.Dump(), s.truthDump(syms...)); diff != "" {
				t.Fatalf("books differ from the ground truth:\n%s", diff)
			}
			d := delta(h.Stats(), st0)
			if !tt.want(d) || d.BookErrors != 0 {
				t.Errorf("counter deltas %+v, want %s and no book errors", d, tt.what)
			}
			t.Logf("decode_errors +%d, dropped +%d, duplicates +%d, gaps +%d, recovered_fix +%d, snapshots +%d",
				d.DecodeErrors, d.Dropped, d.Duplicates, d.Gaps, d.RecoveredFIX, d.Snapshots)
			h.Close()
			_ = h.Do(context.Background(), func() {})
		})
	}
}

// delta returns the counters of b that moved since a (the ones the tests read).
func delta(b, a Stats) Stats {
	return Stats{
		DecodeErrors: b.DecodeErrors - a.DecodeErrors,
		Dropped:      b.Dropped - a.Dropped,
		Duplicates:   b.Duplicates - a.Duplicates,
		Gaps:         b.Gaps - a.Gaps,
		RecoveredFIX: b.RecoveredFIX - a.RecoveredFIX,
		Snapshots:    b.Snapshots - a.Snapshots,
		BookErrors:   b.BookErrors - a.BookErrors,
		Messages:     b.Messages - a.Messages,
	}
}

// TestBogusWhileWaitingForSnapshot: a valid-looking datagram with a number 5000 ahead
// arrives while the channel waits for its first snapshot (a late join). It must be
// dropped, not slide the buffer window past what the snapshot will resume from: that
// left a hole no request could fill, and the handler asked forever.
func TestBogusWhileWaitingForSnapshot(t *testing.T) {
	s := newScript(t)
	rec := &boundedRecovery{s: s}
	h, err := NewEngine(Config{Topics: []string{"SBER"}, Templates: templates(t), Port: port, Recovery: rec})
	if err != nil {
		t.Fatal(err)
	}
	sber := mcast.ChannelName(channelOf("SBER"))
	var now int64 = 1e9
	hand := func(d []byte) {
		t.Helper()
		if !h.Receive(channelOf("SBER"), d, now) {
			t.Fatal("Receive refused SBER's channel")
		}
		now += 1000
	}
	var seqs []uint32
	for i := range 8 {
		seqs = append(seqs, s.update("SBER", md.New, md.Bid, int64(10000+i), 10))
	}
	hand(s.sent[sber][seqs[1]]) // seq 1 lost: a late join, waiting for a snapshot
	hand(s.bogus(t, "SBER", seqs[1]+5000))
	for _, seq := range seqs[2:] {
		hand(s.sent[sber][seq])
	}
	for i := 0; i < 20 || h.Recovering(); i++ {
		if i > 3000 {
			t.Fatalf("recovery did not end: %d retransmits, %d snapshots", len(rec.retransmits), rec.snapshots)
		}
		time.Sleep(time.Millisecond)
		now += int64(time.Millisecond)
		h.DoWork(now)
	}
	if d := book.DiffDumps(h.Dump(), s.truthDump("SBER")); d != "" {
		t.Fatalf("books differ from the ground truth:\n%s", d)
	}
	if st := h.Stats(); st.Dropped != 1 || st.SnapshotsDone != 1 {
		t.Errorf("want the bogus datagram dropped and one snapshot recovery: %+v", st)
	}
	h.Close()
}
