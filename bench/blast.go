package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"time"

	"fastfeed/fast"
	"fastfeed/mcast"
	"fastfeed/md"
)

// A blast is the maximum-rate run: datagrams encoded in advance (so that the simulator and
// the encoder, which share the CPUs with the receiver, are out of the loop) and handed to
// sendmmsg as fast as the kernel takes them, each batch's SendingTime stamped just before.

// blastBatch is the datagrams per sendmmsg.
const blastBatch = 64

// stream is a pre-encoded feed: one instrument per channel, one book entry per datagram
// (20 levels added, then changed), sequenced per channel.
type stream struct {
	symbols  []string
	groups   []netip.AddrPort
	msgs     []mcast.Message
	stampAt  []int // offset of each datagram's SendingTime
	stampLen int
}

// placeholderTime is the SendingTime encoded in advance: 9 stop-bit bytes, as every
// time from 1972 on.
const placeholderTime = int64(1) << 60

func newStream(ts *fast.Templates, symbols []string, port uint16, n int) (*stream, error) {
	codec, err := md.NewCodec(ts)
	if err != nil {
		return nil, fmt.Errorf("bench: blast: %w", err)
	}
	s := &stream{symbols: symbols, msgs: make([]mcast.Message, 0, n), stampAt: make([]int, 0, n)}
	var m mcast.Mapping
	for _, sym := range symbols {
		s.groups = append(s.groups, netip.AddrPortFrom(m.Group(sym), port))
	}
	place := stopBitBytes(placeholderTime)
	s.stampLen = len(place)
	seq := make([]uint32, len(symbols))
	arena := make([]byte, 0, n*48)
	inc := md.Incremental{Entries: make([]md.Entry, 1)}
	for i := 0; len(s.msgs) < n; i++ {
		k := i % len(symbols)
		round := i / len(symbols)
		seq[k]++
		e := &inc.Entries[0]
		*e = md.Entry{Type: md.Bid, Symbol: []byte(symbols[k]), RptSeq: seq[k], Orders: 1,
			Price: md.Decimal{Mantissa: int64(10000 - round%20), Exp: -2, Valid: true},
			Size:  md.Decimal{Mantissa: int64(100 + round%1000), Valid: true}}
		e.Action = md.Change
		if round < 20 {
			e.Action = md.New
		}
		inc.Header = md.Header{SeqNum: seq[k], SendingTime: placeholderTime}
		start := len(arena)
		arena = append(arena, byte(seq[k]), byte(seq[k]>>8), byte(seq[k]>>16), byte(seq[k]>>24))
		if arena, err = codec.AppendIncremental(arena, &inc); err != nil {
			return nil, fmt.Errorf("bench: blast: %w", err)
		}
		d := arena[start:len(arena):len(arena)]
		at := bytes.Index(d, place)
		if at < 4 {
			return nil, fmt.Errorf("bench: blast: SendingTime not found in an encoded datagram")
		}
		s.msgs = append(s.msgs, mcast.Message{Buf: d, Addr: s.groups[k]})
		s.stampAt = append(s.stampAt, at)
	}
	return s, nil
}

// send hands the stream to sendmmsg in batches, stamping each batch's SendingTime just
// before, until done or ctx ends.
func (s *stream) send(ctx context.Context) error {
	snd, err := mcast.NewSender(mcast.SenderConfig{WriteBuffer: 4 << 20, BatchSize: blastBatch})
	if err != nil {
		return fmt.Errorf("bench: blast: %w", err)
	}
	defer snd.Close()
	for i := 0; i < len(s.msgs) && ctx.Err() == nil; i += blastBatch {
		batch := s.msgs[i:min(i+blastBatch, len(s.msgs))]
		now := stopBitBytes(time.Now().UnixNano())
		for j := range batch {
			copy(batch[j].Buf[s.stampAt[i+j]:], now)
		}
		for len(batch) > 0 {
			n, err := snd.WriteBatch(batch)
			if err != nil {
				return fmt.Errorf("bench: blast: sent %d of %d datagrams: %w", i+n, len(s.msgs), err)
			}
			batch = batch[n:]
		}
	}
	return ctx.Err()
}

// stopBitBytes encodes v as FAST stop-bit bytes.
func stopBitBytes(v int64) []byte {
	var b [10]byte
	i := len(b) - 1
	b[i] = byte(v&0x7f) | 0x80
	for v >>= 7; v > 0; v >>= 7 {
		i--
		b[i] = byte(v & 0x7f)
	}
	return b[i:]
}
