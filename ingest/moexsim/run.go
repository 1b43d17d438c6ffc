package moexsim

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"fastfeed/ingest/moex"
	"fastfeed/mcast"
	"fastfeed/replay"
)

// RunConfig paces a run.
type RunConfig struct {
	Steps            int           // simulator events (default 1000)
	Rate             int           // events per second (default 20,000)
	CycleEvery       int           // a snapshot cycle every N events (default 250)
	DefinitionsEvery int           // an IDF cycle every N events (default 1000)
	Linger           time.Duration // after the last event: heartbeats and snapshot cycles (default 500ms)
	HeartbeatEvery   time.Duration // while lingering (default 50ms)
	// NewDayAfter, if set, starts a new trading day every NewDayAfter events: loss off, a
	// heartbeat and line B's delayed copies end the day, HeartbeatEvery passes (the night),
	// then NewDay and a snapshot cycle, loss on again.
	NewDayAfter int
}

// Run opens the market, runs the events with the loss configured, then, loss off,
// sends a heartbeat and a snapshot cycle and lingers (heartbeats, a snapshot cycle every
// fourth) until Linger has passed or ctx ends.
func (x *Exchange) Run(ctx context.Context, rc RunConfig) error {
	if rc.Steps <= 0 {
		rc.Steps = 1000
	}
	if rc.Rate <= 0 {
		rc.Rate = 20000
	}
	if rc.CycleEvery <= 0 {
		rc.CycleEvery = 250
	}
	if rc.DefinitionsEvery <= 0 {
		rc.DefinitionsEvery = 1000
	}
	if rc.Linger <= 0 {
		rc.Linger = 500 * time.Millisecond
	}
	if rc.HeartbeatEvery <= 0 {
		rc.HeartbeatEvery = 50 * time.Millisecond
	}
	x.SetLoss(false)
	if err := x.Open(); err != nil {
		return err
	}
	if err := x.Cycle(); err != nil {
		return err
	}
	x.SetLoss(true)
	start := time.Now()
	for i := 1; i <= rc.Steps; i++ {
		if i&63 == 0 {
			if ctx.Err() != nil {
				return nil
			}
			due := start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rc.Rate)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		if err := x.Step(); err != nil {
			return err
		}
		if i%rc.CycleEvery == 0 {
			if err := x.Cycle(); err != nil {
				return err
			}
		}
		if i%rc.DefinitionsEvery == 0 {
			if err := x.Definitions(); err != nil {
				return err
			}
		}
		if rc.NewDayAfter > 0 && i%rc.NewDayAfter == 0 && i < rc.Steps {
			if err := x.endOfDay(ctx, rc.HeartbeatEvery); err != nil {
				return err
			}
		}
	}
	x.SetLoss(false)
	if err := x.Heartbeat(); err != nil {
		return err
	}
	if err := x.FlushLate(); err != nil {
		return err
	}
	if err := x.Cycle(); err != nil {
		return err
	}
	t := time.NewTicker(rc.HeartbeatEvery)
	defer t.Stop()
	end := time.After(rc.Linger)
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-end:
			return nil
		case <-t.C:
		}
		if err := x.Heartbeat(); err != nil {
			return err
		}
		if err := x.FlushLate(); err != nil {
			return err
		}
		if n%4 == 0 {
			if err := x.Cycle(); err != nil {
				return err
			}
		}
	}
}

// endOfDay ends the trading day and starts the next (RunConfig.NewDayAfter).
func (x *Exchange) endOfDay(ctx context.Context, night time.Duration) error {
	x.SetLoss(false)
	if err := x.Heartbeat(); err != nil {
		return err
	}
	if err := x.FlushLate(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(night):
	}
	if err := x.NewDay(); err != nil {
		return err
	}
	if err := x.Cycle(); err != nil {
		return err
	}
	x.SetLoss(true)
	return nil
}

// CheckAddresses refuses a market whose mapped addresses still include the exchange's
// real ones (those orig's configuration names), unless inside is true: the process runs
// in a private network namespace it created (internal/netns), where they reach nothing.
// Outside one, every group must also be mapped into 239.255.0.0/16 or another
// administratively scoped or loopback-only range, and every source and the replay
// service onto loopback.
func CheckAddresses(orig, mapped *moex.Market, inside bool) error {
	if inside {
		return nil
	}
	real := orig.Addresses()
	for _, cn := range mapped.Connections {
		for _, l := range cn.Lines {
			if real[l.Group.Addr()] {
				return fmt.Errorf("moexsim: %s line %s: group %s is the exchange's own address: map it (--map) or run inside a private network namespace", cn.ID, l.ID, l.Group.Addr())
			}
			if !l.Group.Addr().IsMulticast() {
				return fmt.Errorf("moexsim: %s line %s: %s is not a multicast group", cn.ID, l.ID, l.Group.Addr())
			}
			if l.Src.IsValid() && !l.Src.IsLoopback() {
				return fmt.Errorf("moexsim: %s line %s: source %s is not a loopback address: map it (--map) or run inside a private network namespace", cn.ID, l.ID, l.Src)
			}
		}
		if cn.Addr.IsValid() && !cn.Addr.Addr().IsLoopback() {
			return fmt.Errorf("moexsim: %s: %s is not a loopback address: map it (--map) or run inside a private network namespace", cn.ID, cn.Addr)
		}
	}
	return nil
}

// MulticastOutput sends every datagram from a multicast socket bound to its line's
// source address (on loopback, the sources of a private namespace's lo).
type MulticastOutput struct {
	senders map[netip.Addr]*mcast.Sender
}

// NewMulticastOutput returns an output for the market's lines' sources (a line without
// src-ip sends from 127.0.0.1).
func NewMulticastOutput(m *moex.Market) (*MulticastOutput, error) {
	o := &MulticastOutput{senders: map[netip.Addr]*mcast.Sender{}}
	for _, cn := range m.Connections {
		for _, l := range cn.Lines {
			src := l.Src
			if !src.IsValid() {
				src = netip.AddrFrom4([4]byte{127, 0, 0, 1})
			}
			if _, ok := o.senders[src]; ok {
				continue
			}
			s, err := mcast.NewSender(mcast.SenderConfig{Interface: src, WriteBuffer: 4 << 20})
			if err != nil {
				o.Close()
				return nil, fmt.Errorf("moexsim: sender from %s: %w", src, err)
			}
			o.senders[src] = s
		}
	}
	return o, nil
}

// Send implements Output.
func (o *MulticastOutput) Send(src, dst netip.AddrPort, payload []byte) error {
	a := src.Addr()
	if !a.IsValid() || a.IsUnspecified() {
		a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	s, ok := o.senders[a]
	if !ok {
		return fmt.Errorf("moexsim: no sender for source %s", a)
	}
	return s.WriteTo(payload, dst)
}

// Close closes the sockets.
func (o *MulticastOutput) Close() error {
	for _, s := range o.senders {
		s.Close()
	}
	return nil
}

// CaptureOutput writes every datagram to a capture instead, stamped by a clock that
// advances a microsecond a datagram.
type CaptureOutput struct {
	W   *replay.Writer
	Now int64
}

// Send implements Output.
func (o *CaptureOutput) Send(src, dst netip.AddrPort, payload []byte) error {
	o.Now += 1000
	return o.W.WriteUDP(o.Now, src, dst, payload)
}
