package feed

import (
	"encoding/binary"
	"testing"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
)

// status appends a SecurityStatus of symbol, numbered on its channel, to the script.
func (s *script) status(symbol string, status uint32, text string) uint32 {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := mcast.ChannelName(channelOf(symbol))
	s.seq[ch]++
	payload := binary.LittleEndian.AppendUint32(nil, s.seq[ch])
	payload, err := s.codec.AppendStatus(payload, &md.Status{Header: md.Header{SeqNum: s.seq[ch]}, Symbol: []byte(symbol), TradingStatus: status, Text: []byte(text)})
	if err != nil {
		s.t.Fatal(err)
	}
	if s.sent[ch] == nil {
		s.sent[ch] = map[uint32][]byte{}
	}
	s.sent[ch][s.seq[ch]] = payload
	return s.seq[ch]
}

// TestUpstreamStale: a source's status 20 ("stale", as ingest --republish sends for an
// exchange gap) shows the book stale in the dump, the counters and the operator's view
// until its 17 ("ready"); the source's entries meanwhile are applied, and the status
// still reaches the subscribers.
func TestUpstreamStale(t *testing.T) {
	s := newScript(t)
	syms := []string{"SBER", "GAZP"}
	rec := &fakeRecovery{s: s}
	h, err := NewEngine(Config{Topics: syms, Templates: templates(t), Port: port, Recovery: rec})
	if err != nil {
		t.Fatal(err)
	}
	var statuses []uint32
	h.Subscribe(func(ev *Event) {
		if ev.Kind == EventStatus {
			statuses = append(statuses, ev.Status)
		}
	}, "SBER")
	var now int64 = 1e9
	hand := func(sym string, seq uint32) {
		t.Helper()
		h.Receive(channelOf(sym), s.sent[mcast.ChannelName(channelOf(sym))][seq], now)
		now += 1000
		h.DoWork(now)
	}
	stale := func() map[string]bool {
		out := map[string]bool{}
		for _, b := range h.Dump() {
			out[b.Symbol] = b.Stale
		}
		return out
	}
	for i := range 5 {
		for j, sym := range syms {
			hand(sym, s.update(sym, md.New, md.Bid, int64(10000+j*100+i), 10))
		}
	}
	hand("SBER", s.status("SBER", 20, "stale"))
	if got := stale(); !got["SBER"] || got["GAZP"] {
		t.Fatalf("after SBER's status 20: stale %v", got)
	}
	if st := h.Stats(); st.StaleBooks != 1 || st.UpstreamStale != 1 {
		t.Errorf("after status 20: stale_books %d upstream_stale %d", st.StaleBooks, st.UpstreamStale)
	}
	// The source's book moves on; its entries are applied (the book stays as the source
	// has it) but it stays stale.
	hand("SBER", s.update("SBER", md.New, md.Offer, 10100, 5))
	if got := stale(); !got["SBER"] {
		t.Fatal("SBER fresh again before the source's 17")
	}
	hand("SBER", s.status("SBER", 17, "ready"))
	if got := stale(); got["SBER"] || got["GAZP"] {
		t.Fatalf("after SBER's status 17: stale %v", got)
	}
	if d := book.DiffDumps(h.Dump(), s.truthDump(syms...)); d != "" {
		t.Fatalf("books:\n%s", d)
	}
	if st := h.Stats(); st.StaleBooks != 0 {
		t.Errorf("after status 17: stale_books %d", st.StaleBooks)
	}
	if len(statuses) != 2 || statuses[0] != 20 || statuses[1] != 17 {
		t.Errorf("subscriber saw statuses %v, want [20 17]", statuses)
	}
}

// TestFinishWithHoleOpen: a handler that stops with numbers known to be missing on a
// channel shows that channel's books stale, not as current; a channel in sequence stays
// fresh.
func TestFinishWithHoleOpen(t *testing.T) {
	s := newScript(t)
	syms := []string{"SBER", "GAZP"}
	h, err := NewEngine(Config{Topics: syms, Templates: templates(t), Port: port, Recovery: &fakeRecovery{s: s}})
	if err != nil {
		t.Fatal(err)
	}
	var now int64 = 1e9
	for i := range 4 {
		for j, sym := range syms {
			seq := s.update(sym, md.New, md.Bid, int64(10000+j*100+i), 10)
			if sym == "SBER" && i == 2 {
				continue // lost; the stop comes before any recovery
			}
			h.Receive(channelOf(sym), s.sent[mcast.ChannelName(channelOf(sym))][seq], now)
			now += 1000
		}
	}
	h.finish(now)
	got := map[string]bool{}
	for _, b := range h.Dump() {
		got[b.Symbol] = b.Stale
	}
	if !got["SBER"] || got["GAZP"] {
		t.Errorf("stale after a stop with SBER's channel behind: %v, want SBER only", got)
	}
	if st := h.Stats(); st.StaleBooks != 1 {
		t.Errorf("stale_books %d, want 1", st.StaleBooks)
	}
}
