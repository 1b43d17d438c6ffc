package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"

	"fastfeed/feed"
	"fastfeed/mcast"
)

// PlayConfig configures Play. Exactly one of Engine and Sender is set.
type PlayConfig struct {
	// Speed scales the capture's pace: 1 replays at the recorded pace, 2 twice as
	// fast; 0 (or below) replays as fast as possible.
	Speed float64

	// Engine, a feed.Engine (no sockets), receives every datagram in process, exactly
	// as a Handler's receiver would hand it over: the datagram's destination selects
	// the channel (datagrams for groups it has not joined are counted in
	// Summary.NotJoined), and the capture's timestamp is its receive time. Play is the
	// engine's duty cycle: it calls Receive and DoWork, from its own goroutine.
	Engine *feed.Engine
	// Sender re-sends every datagram to its captured destination group and port,
	// for a separate handler to consume. Only datagrams to multicast groups are
	// sent (the Sender's interface decides where they go, loopback by default);
	// the others are counted in Summary.NotMulticast and never sent.
	Sender *mcast.Sender

	// Drain bounds how long Play waits, after the last datagram, for the handler's
	// FIX recovery (retransmissions, snapshots) to finish (default 10s).
	Drain time.Duration

	// PacketError, if set, is called for each malformed capture record; the record
	// is skipped and replay goes on.
	PacketError func(err *PacketError)
	// Malformed, if set, is called for each datagram whose payload the handler
	// could not decode (its decode_errors counter grew).
	Malformed func(d *Datagram)
	// Progress, if set, is called every ProgressEvery (default 200ms) of wall time
	// and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Sent, if set, is called for each datagram as it is handed over, with the time
	// of the handover measured by the replayer (monotonic, since the replay
	// started): the pacing a test can check against d.Time.
	Sent func(d *Datagram, at time.Duration)
}

// Progress is how far a replay has come.
type Progress struct {
	Packets   uint64        // capture records read
	Datagrams uint64        // datagrams handed over
	Bytes     uint64        // their UDP payload bytes
	Elapsed   time.Duration // wall time since the replay started
	Capture   time.Duration // capture time of the last datagram since the first
	Done      bool          // the final call
}

// Rate returns datagrams per second of wall time.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Datagrams) / p.Elapsed.Seconds()
}

// Summary is what Play did.
type Summary struct {
	Reader    Stats  // the capture's counts: packets, skipped, malformed, ...
	Delivered uint64 // datagrams handed to the handler or sent
	NotJoined uint64 // datagrams for groups the handler has not joined
	// NotMulticast counts datagrams a Sender did not send: their destination is
	// not a multicast group.
	NotMulticast uint64
	Bytes        uint64        // UDP payload bytes delivered
	Malformed    uint64        // datagrams the handler could not decode
	FileError    error         // why the capture could not be read to its end, if it could not
	Elapsed      time.Duration // wall time of the replay
	Span         time.Duration // capture time from the first datagram to the last
	// Channels are the sequence numbers seen in the datagrams' 4-byte preambles, per
	// destination, sorted by destination: holes in the capture itself, whatever the
	// handler made of them.
	Channels []ChannelSeq
}

// ChannelSeq counts one destination's datagrams and the holes in their sequence
// numbers (a preamble of 0, a SequenceReset at startup, restarts the numbering).
type ChannelSeq struct {
	Dst       netip.AddrPort
	Datagrams uint64
	Last      uint32 // highest sequence number seen
	Holes     uint64 // jumps forward by more than one
	Missing   uint64 // sequence numbers skipped by those jumps
}

// Play replays r's datagrams into cfg.Engine or onto cfg.Sender, paced by their
// capture timestamps scaled by cfg.Speed, until the end of the capture or ctx ends.
// Malformed records are reported and skipped; a capture that cannot be read to its
// end (truncated) ends the replay with Summary.FileError set and a nil error. The
// error is ctx's, a send error, or a bad configuration.
//
// An engine's clock is the capture's: each datagram is received at its timestamp,
// and the engine's timers run (feed.Engine.DoWork) after each datagram and, while
// Play waits to pace, as capture time passes. When replaying as fast as possible and
// the engine waits for FIX recovery, Play stops reading and lets the engine's clock
// run with the wall clock until the recovery ends, so answers from a real recovery
// service arrive before their timeouts.
func Play(ctx context.Context, r *Reader, cfg PlayConfig) (*Summary, error) {
	if (cfg.Engine == nil) == (cfg.Sender == nil) {
		return nil, errors.New("replay: Play needs exactly one of an engine and a sender")
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 10 * time.Second
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 200 * time.Millisecond
	}
	p := player{cfg: cfg, r: r, seqs: map[netip.AddrPort]*ChannelSeq{}}
	err := p.run(ctx)
	return p.summary(), err
}

type player struct {
	cfg   PlayConfig
	r     *Reader
	sum   Summary
	seqs  map[netip.AddrPort]*ChannelSeq
	start time.Time
	first int64 // capture time of the first datagram
	last  int64 // capture time of the last datagram
	shift int64 // engine clock minus capture time: time spent waiting for recovery
	began bool
	prog  time.Duration // when Progress was last called
}

func (p *player) run(ctx context.Context) error {
	p.start = time.Now()
	var d Datagram
	var decodeErrors uint64
	h := p.cfg.Engine
	if h != nil {
		decodeErrors = h.DecodeErrors()
	}
	for n := 0; ; n++ {
		if n&63 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := p.r.Next(&d); err != nil {
			if err == io.EOF {
				break
			}
			if pe := (*PacketError)(nil); errors.As(err, &pe) {
				if p.cfg.PacketError != nil {
					p.cfg.PacketError(pe)
				}
				continue
			}
			if fe := (*FileError)(nil); errors.As(err, &fe) {
				p.sum.FileError = fe
				break
			}
			return err
		}
		if !p.began {
			p.began, p.first = true, d.Time
		}
		if d.Time > p.last {
			p.last = d.Time
		}
		if err := p.pace(ctx, d.Time); err != nil {
			return err
		}
		p.sequence(&d)
		if p.cfg.Sent != nil {
			p.cfg.Sent(&d, time.Since(p.start))
		}
		if h != nil {
			at := d.Time + p.shift
			if !h.Receive(d.Dst, d.Payload, at) {
				p.sum.NotJoined++
			} else {
				p.delivered(&d)
				if e := h.DecodeErrors(); e != decodeErrors {
					decodeErrors = e
					p.sum.Malformed++
					if p.cfg.Malformed != nil {
						p.cfg.Malformed(&d)
					}
				}
			}
			h.DoWork(at)
			if p.cfg.Speed <= 0 && h.Recovering() {
				if err := p.waitRecovery(ctx, ctx); err != nil {
					return err
				}
			}
		} else if !d.Dst.Addr().IsMulticast() {
			p.sum.NotMulticast++
		} else {
			if err := p.cfg.Sender.WriteTo(d.Payload, d.Dst); err != nil {
				return fmt.Errorf("replay: packet %d: %w", d.PacketNum, err)
			}
			p.delivered(&d)
		}
		if n&255 == 0 {
			p.progress(false)
		}
	}
	if h != nil {
		// Let the timers of holes still open fire, then wait for their recovery.
		now := p.last + p.shift + int64(time.Second)
		h.DoWork(now)
		p.shift += int64(time.Second)
		dctx, cancel := context.WithTimeout(ctx, p.cfg.Drain)
		defer cancel()
		if err := p.waitRecovery(ctx, dctx); err != nil {
			return err
		}
	}
	p.progress(true)
	return nil
}

func (p *player) delivered(d *Datagram) {
	p.sum.Delivered++
	p.sum.Bytes += uint64(len(d.Payload))
}

// pace waits until the datagram captured at ts is due.
func (p *player) pace(ctx context.Context, ts int64) error {
	if p.cfg.Speed <= 0 {
		return nil
	}
	due := time.Duration(float64(ts-p.first) / p.cfg.Speed)
	for {
		left := due - time.Since(p.start)
		if left <= 0 {
			return nil
		}
		if left > 4*time.Millisecond {
			// Sleep most of the wait in steps, running the engine's timers at the
			// capture time reached; spin the last stretch for precision (a sleep
			// may overshoot by a millisecond or more).
			step := min(left-3*time.Millisecond, 50*time.Millisecond)
			time.Sleep(step)
			if err := ctx.Err(); err != nil {
				return err
			}
			if h := p.cfg.Engine; h != nil {
				h.DoWork(p.first + int64(float64(time.Since(p.start))*p.cfg.Speed) + p.shift)
			}
			p.progress(false)
			continue
		}
		// Busy-wait: sub-millisecond sleeps overshoot.
		for time.Since(p.start) < due {
		}
		return nil
	}
}

// waitRecovery runs the engine's clock with the wall clock, polling it, while it
// waits for FIX recovery, until stop ends. ctx's end is an error; stop's is not.
func (p *player) waitRecovery(ctx, stop context.Context) error {
	h := p.cfg.Engine
	base := p.last + p.shift
	t0 := time.Now()
	defer func() { p.shift += int64(time.Since(t0)) }()
	for h.Recovering() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if stop.Err() != nil {
			return nil
		}
		time.Sleep(time.Millisecond)
		h.DoWork(base + int64(time.Since(t0)))
		p.progress(false)
	}
	h.DoWork(base + int64(time.Since(t0)))
	return nil
}

// sequence notes d's sequence number in its destination's ChannelSeq.
func (p *player) sequence(d *Datagram) {
	c := p.seqs[d.Dst]
	if c == nil {
		c = &ChannelSeq{Dst: d.Dst}
		p.seqs[d.Dst] = c
		if len(d.Payload) >= 4 {
			c.Last = binary.LittleEndian.Uint32(d.Payload)
			c.Datagrams++
			return
		}
	}
	c.Datagrams++
	if len(d.Payload) < 4 {
		return
	}
	seq := binary.LittleEndian.Uint32(d.Payload)
	switch diff := int32(seq - c.Last); {
	case seq == 0:
		c.Last = 0 // SequenceReset: numbering starts again at 1
	case diff > 1:
		c.Holes++
		c.Missing += uint64(diff - 1)
		c.Last = seq
	case diff == 1:
		c.Last = seq
	}
}

func (p *player) progress(done bool) {
	if p.cfg.Progress == nil {
		return
	}
	el := time.Since(p.start)
	if !done && el-p.prog < p.cfg.ProgressEvery {
		return
	}
	p.prog = el
	st := p.r.Stats()
	p.cfg.Progress(Progress{Packets: st.Packets, Datagrams: p.sum.Delivered, Bytes: p.sum.Bytes,
		Elapsed: el, Capture: time.Duration(p.last - p.first), Done: done})
}

func (p *player) summary() *Summary {
	s := p.sum
	s.Reader = p.r.Stats()
	s.Elapsed = time.Since(p.start)
	if p.began {
		s.Span = time.Duration(p.last - p.first)
	}
	for _, c := range p.seqs {
		s.Channels = append(s.Channels, *c)
	}
	sort.Slice(s.Channels, func(i, j int) bool { return s.Channels[i].Dst.Compare(s.Channels[j].Dst) < 0 })
	return &s
}
