package publisher

// Aligning the snapshots of one request to one channel sequence number.

import (
	"context"
	"fmt"

	"fastfeed/book"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// align brings the snapshots of each channel to one LastMsgSeqNumProcessed,
// the newest among them, by applying the channel's retained incrementals in
// between to the older ones. The publishing loop takes a few snapshots per
// iteration, so the snapshots of one request may straddle iterations, and
// data, of their channel.
func (s *RecoveryService) align(ctx context.Context, codec *md.Codec, snaps []md.Snapshot) error {
	byChannel := make(map[string][]*md.Snapshot)
	var order []string
	for i := range snaps {
		ch, _ := s.p.ChannelOf(string(snaps[i].Symbol))
		if byChannel[ch] == nil {
			order = append(order, ch)
		}
		byChannel[ch] = append(byChannel[ch], &snaps[i])
	}
	for _, ch := range order {
		group := byChannel[ch]
		lo, hi := group[0].LastMsgSeqNumProcessed, group[0].LastMsgSeqNumProcessed
		for _, sn := range group[1:] {
			lo, hi = min(lo, sn.LastMsgSeqNumProcessed), max(hi, sn.LastMsgSeqNumProcessed)
		}
		if lo == hi {
			continue
		}
		dgs, err := s.p.Retransmit(ctx, ch, lo+1, hi)
		if err != nil {
			return fmt.Errorf("publisher: snapshots of %s taken at %d..%d cannot be brought to one sequence number: %w", ch, lo, hi, err)
		}
		n, err := rollForward(codec, group, lo+1, dgs, s.p.exponents)
		if err != nil {
			return fmt.Errorf("publisher: snapshots of %s: %w", ch, err)
		}
		s.aligned.Add(uint64(n))
	}
	return nil
}

// rollForward applies the incrementals of dgs, the channel's datagrams from
// sequence number first on, to the snapshots taken before each, and leaves
// every snapshot at the last datagram's number. It returns how many
// snapshots it moved. exps gives each symbol's price and size exponents.
func rollForward(codec *md.Codec, snaps []*md.Snapshot, first uint32, dgs [][]byte, exps func(string) ([2]int8, bool)) (int, error) {
	if len(dgs) == 0 {
		return 0, nil
	}
	last := first + uint32(len(dgs)) - 1
	type state struct {
		snap *md.Snapshot
		book *book.MBP
		exp  [2]int8
	}
	states := make(map[string]*state)
	for _, sn := range snaps {
		if sn.LastMsgSeqNumProcessed >= last {
			continue
		}
		exp, ok := exps(string(sn.Symbol))
		if !ok {
			return 0, fmt.Errorf("snapshot of unknown symbol %q", sn.Symbol)
		}
		b, err := book.NewMBP(book.Config{PriceExp: int(exp[0]), SizeExp: int(exp[1])})
		if err != nil {
			return 0, err
		}
		bids, asks, err := mdbook.Levels(nil, nil, sn.Entries, exp[0], exp[1])
		if err != nil {
			return 0, fmt.Errorf("snapshot of %s: %w", sn.Symbol, err)
		}
		if err := b.Replace(bids, asks); err != nil {
			return 0, fmt.Errorf("snapshot of %s: %w", sn.Symbol, err)
		}
		states[string(sn.Symbol)] = &state{snap: sn, book: b, exp: exp}
	}
	for i, d := range dgs {
		seq, kind, err := DecodeDatagram(codec, d)
		if err != nil {
			return 0, err
		}
		if seq != first+uint32(i) {
			return 0, fmt.Errorf("retained datagram %d where %d was expected", seq, first+uint32(i))
		}
		if kind != md.KindIncremental {
			continue
		}
		for j := range codec.Incremental.Entries {
			e := &codec.Incremental.Entries[j]
			st := states[string(e.Symbol)]
			if st == nil || seq <= st.snap.LastMsgSeqNumProcessed {
				continue
			}
			u, err := mdbook.Update(e, st.exp[0], st.exp[1])
			if err != nil {
				return 0, fmt.Errorf("datagram %d: %s: %w", seq, e.Symbol, err)
			}
			if err := st.book.Apply(u); err != nil {
				return 0, fmt.Errorf("datagram %d: %s entry %d: %w", seq, e.Symbol, e.RptSeq, err)
			}
			st.snap.RptSeq = e.RptSeq
		}
	}
	for _, st := range states {
		b, in := st.book, st.snap
		in.Entries, _ = mdbook.Entries(in.Entries[:0], b, nil)
		in.LastMsgSeqNumProcessed = last
	}
	return len(states), nil
}
