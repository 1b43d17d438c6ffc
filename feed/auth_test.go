package feed

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
)

// FuzzReceiveWithKey hands an engine with a key arbitrary datagrams, sealed
// for their channel or not (seal), on two joined channels. A datagram whose trailer does
// not check counts one auth failure and changes nothing else: no decode error, no
// message, no sequence number taken, no book touched. One that checks is handled as
// without a key: a decode error for a fresh number that does not decode, none for one
// that decodes. Never a panic, never more than a bounded allocation per datagram.
func FuzzReceiveWithKey(f *testing.F) {
	t := &testing.T{}
	key := testKey(t, "c3")
	s := newScript(t)
	sber := mcast.ChannelName(channelOf("SBER"))
	for i := range 4 {
		seq := s.update("SBER", md.New, md.Bid, int64(10000+i), 10)
		f.Add(uint8(0), s.sent[sber][seq], true)
	}
	seq := s.update("SBER", md.Change, md.Bid, 10000, 20)
	d := s.sent[sber][seq]
	f.Add(uint8(0), d, false)
	f.Add(uint8(0), key.Seal(nil, channelOf("SBER"), d), false)
	f.Add(uint8(1), key.Seal(nil, channelOf("SBER"), d), false) // sealed for another channel
	f.Add(uint8(0), d[:len(d)/2], true)
	f.Add(uint8(0), []byte{}, true)
	f.Add(uint8(0), d[:3], false)
	forged, _ := s.forge(t, "SBER")
	f.Add(uint8(0), forged, false)
	f.Add(uint8(0), testKey(t, "99").Seal(nil, channelOf("SBER"), forged), false)
	if t.Failed() {
		f.Fatal("building the seeds failed")
	}

	h, err := NewEngine(Config{Topics: []string{"SBER", "GAZP"}, Templates: templates(f), Port: port, Key: key})
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
	f.Fuzz(func(t *testing.T, which uint8, b []byte, seal bool) {
		dst := channelOf(dsts[int(which)%len(dsts)])
		if seal {
			b = key.Seal(nil, dst, b)
		}
		payload, aerr := key.Clone().Open(dst, b)
		tr := h.sockets[h.socketIndex(dst)].ch.tracker
		st0, next0, dump0 := h.Stats(), tr.Next(), h.Dump()
		fresh := len(payload) < 4 || int32(binary.LittleEndian.Uint32(payload)-next0) >= 0
		decodes := false
		if aerr == nil && len(payload) >= 4 {
			if _, ok := check.Peek(payload[4:]); ok {
				_, err := check.Decode(payload[4:])
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
		st := h.Stats()
		errs, fails := st.DecodeErrors-st0.DecodeErrors, st.AuthFailures-st0.AuthFailures
		if aerr != nil {
			if fails != 1 || errs != 0 || st.Messages != st0.Messages || st.Duplicates != st0.Duplicates ||
				st.ABMismatch != st0.ABMismatch || tr.Next() != next0 || book.DiffDumps(h.Dump(), dump0) != "" {
				t.Fatalf("a datagram that fails authentication (%v) changed the handler: auth_failures +%d, decode_errors +%d", aerr, fails, errs)
			}
			return
		}
		switch {
		case fails != 0:
			t.Fatalf("an authentic datagram counted %d auth failures", fails)
		case decodes && errs != 0:
			t.Fatalf("a datagram that decodes counted %d decode errors", errs)
		case !decodes && fresh && errs != 1:
			t.Fatalf("a fresh datagram that does not decode counted %d decode errors, want 1", errs)
		case errs > 1:
			t.Fatalf("one datagram counted %d decode errors", errs)
		}
	})
}

// TestHandlerNoAllocsWithKey is TestHandlerNoAllocs with every datagram sealed: the
// receive path, authentication included, allocates nothing.
func TestHandlerNoAllocsWithKey(t *testing.T) {
	key := testKey(t, "c3")
	h, err := New(Config{Topics: benchSymbols, Templates: templates(t), Port: port, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var events int
	h.Subscribe(func(*Event) { events++ }, "*")
	h.DoWork(0)
	ds, _ := stream(&testing.B{}, benchSymbols, 20000)
	group := sealStream(h, key, ds)
	i := 0
	step := func() {
		d := &ds[i]
		h.receive(group[i], d.Buf, int64(i))
		i++
	}
	for range 1000 {
		step()
	}
	if a := testing.AllocsPerRun(10000, step); a != 0 {
		t.Errorf("%.2f allocations per datagram", a)
	}
	if h.stats.Messages != uint64(i) || events == 0 || h.stats.BookErrors != 0 || h.stats.AuthFailures != 0 {
		t.Errorf("messages %d of %d, events %d, book errors %d, auth failures %d", h.stats.Messages, i, events, h.stats.BookErrors, h.stats.AuthFailures)
	}
}

// sealStream seals the datagrams of ds in place for their channels and returns each one's
// socket index in h.
func sealStream(h *Handler, key *dgauth.Key, ds []mcast.Message) []int {
	group := map[netip.AddrPort]int{}
	for i, si := range h.sockets {
		if si.ch != nil {
			group[si.ch.addr] = i
		}
	}
	groups := make([]int, len(ds))
	for i := range ds {
		if key != nil {
			ds[i].Buf = key.Seal(nil, ds[i].Addr, ds[i].Buf)
		}
		groups[i] = group[ds[i].Addr]
	}
	return groups
}

// BenchmarkApplyWithKey is BenchmarkApply with and without a key, side by side: the
// handler's work per datagram (authentication, decode, sequence check, book update, fan-out
// to no subscriber) without sockets. The difference is the trailer's cost per datagram.
func BenchmarkApplyWithKey(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		name := "nokey"
		var key *dgauth.Key
		if keyed {
			name, key = "key", testKey(b, "c3")
		}
		b.Run(name, func(b *testing.B) {
			h, err := New(Config{Topics: benchSymbols, Templates: templates(b), Port: port, Key: key})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			ds, _ := stream(b, benchSymbols, 20000)
			groups := sealStream(h, key, ds)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(ds) {
					for _, ch := range h.channels {
						h.reset(ch, 1)
					}
					i = 0
				}
				h.receive(groups[i], ds[i].Buf, 0)
				i++
			}
			if h.stats.BookErrors != 0 || h.stats.DecodeErrors != 0 || h.stats.AuthFailures != 0 || h.stats.ABMismatch != 0 {
				b.Fatalf("book errors %d, decode errors %d, auth failures %d, mismatches %d", h.stats.BookErrors,
					h.stats.DecodeErrors, h.stats.AuthFailures, h.stats.ABMismatch)
			}
		})
	}
}
