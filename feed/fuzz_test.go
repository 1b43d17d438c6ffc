package feed

import (
	"encoding/binary"
	"runtime"
	"testing"

	"fastfeed/mcast"
	"fastfeed/md"
)

// FuzzReceive hands an engine arbitrary datagrams on a joined channel. It must
// never panic, never allocate more than a bounded amount for one datagram, and count in
// Stats().DecodeErrors every datagram that does not decode and whose sequence number it
// has not applied yet (a copy of an applied number is dropped undecoded, as a
// duplicate), and none that decodes. The handler lives across inputs, so its state
// (holes, buffers, stale books) is fuzzed too.
func FuzzReceive(f *testing.F) {
	t := &testing.T{}
	s := newScript(t)
	sber := mcast.ChannelName(channelOf("SBER"))
	for i := range 4 {
		seq := s.update("SBER", md.New, md.Bid, int64(10000+i), 10)
		f.Add(uint8(0), s.sent[sber][seq])
	}
	seq := s.update("SBER", md.Change, md.Bid, 10000, 20)
	d := s.sent[sber][seq]
	f.Add(uint8(0), d[:len(d)/2])
	f.Add(uint8(0), d[:3])
	f.Add(uint8(0), withTemplateID(t, d, 9999))
	f.Add(uint8(0), s.bogus(t, "SBER", 1<<32-1))
	f.Add(uint8(0), s.bogus(t, "SBER", 1<<31))
	f.Add(uint8(1), s.bogus(t, "GAZP", 1))
	hb := binary.LittleEndian.AppendUint32(nil, 1<<32-1)
	hb, _ = s.codec.AppendHeartbeat(hb, &md.Heartbeat{LastSeqNum: 1<<32 - 1})
	f.Add(uint8(0), hb)
	if t.Failed() {
		f.Fatal("building the seeds failed")
	}

	h, err := NewEngine(Config{Topics: []string{"SBER", "GAZP"}, Templates: templates(f), Port: port})
	if err != nil {
		f.Fatal(err)
	}
	check, err := md.NewCodec(templates(f))
	if err != nil {
		f.Fatal(err)
	}
	dsts := [...]string{"SBER", "GAZP"}
	var now int64 = 1e9
	var before, after runtime.MemStats
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		dst := channelOf(dsts[int(which)%len(dsts)])
		errs := h.Stats().DecodeErrors
		fresh := len(b) < 4 || int32(binary.LittleEndian.Uint32(b)-h.sockets[h.socketIndex(dst)].ch.tracker.Next()) >= 0
		decodes := false
		if len(b) >= 4 {
			if _, ok := check.Peek(b[4:]); ok {
				_, err := check.Decode(b[4:])
				decodes = err == nil
			}
		}
		runtime.ReadMemStats(&before)
		now += 1000
		if !h.Receive(dst, b, now) {
			t.Fatalf("Receive refused %v", dst)
		}
		h.DoWork(now)
		runtime.ReadMemStats(&after)
		if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
			t.Fatalf("%d bytes allocated for a datagram of %d bytes", a, len(b))
		}
		got := h.Stats().DecodeErrors - errs
		switch {
		case decodes && got != 0:
			t.Fatalf("a datagram that decodes counted %d decode errors", got)
		case !decodes && fresh && got != 1:
			t.Fatalf("a fresh datagram that does not decode counted %d decode errors, want 1", got)
		case got > 1:
			t.Fatalf("one datagram counted %d decode errors", got)
		}
	})
}
