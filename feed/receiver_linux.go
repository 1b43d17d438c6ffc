package feed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"fastfeed/internal/cpupin"
	"fastfeed/mcast"
)

// New creates a handler and joins the groups of its topics (and the instrument
// definitions channel). It does not read until Run.
func New(cfg Config) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p, err := mcast.NewPoller(mcast.PollerConfig{Interface: cfg.Interface, ReadBuffer: cfg.ReadBuffer, BatchSize: cfg.Batch,
		Shared: cfg.SharedSockets})
	if err != nil {
		return nil, err
	}
	join := func(addr netip.AddrPort) (int, error) {
		if cfg.Source.IsValid() {
			return p.JoinSourceSpecificGroup(addr, cfg.Source)
		}
		return p.JoinGroup(addr)
	}
	e, err := newEngine(cfg, join)
	if err != nil {
		p.Close()
		return nil, err
	}
	if !cfg.BusyPoll {
		e.queue.wake = p.Wake // a spinning Run sees its commands without a wake-up
	}
	if cfg.SharedSockets {
		// One receive buffer holds every group of a port: say so when the kernel granted
		// less than asked (SO_RCVBUF without CAP_NET_ADMIN is capped by rmem_max).
		for i := range p.Len() {
			if got := p.Membership(i).ReadBuffer; got < e.cfg.ReadBuffer {
				e.log.Warn("shared sockets: the kernel granted a smaller receive buffer than asked, for all the groups of a port",
					"granted", got, "asked", e.cfg.ReadBuffer, "groups", p.Len(), "sockets", p.Sockets(),
					"fix", "raise net.core.rmem_max, or run with CAP_NET_ADMIN (SO_RCVBUFFORCE)")
				break
			}
		}
	}
	e.leave = p.LeaveGroup
	return &Handler{Engine: e, poller: p}, nil
}

// Run reads and applies the feed until ctx ends. It returns ctx's error or a socket
// error. Each turn of its loop is one duty cycle: a recvmmsg batch into the engine, then
// the engine's DoWork (a bounded share of the command queue, the timers). By default a
// turn with nothing to do sleeps in epoll; with Config.BusyPoll it never sleeps (the
// loop spins on a locked OS thread, Config.PinCPU pins that thread), each turn reads one
// socket (mcast.Poller.Poll), and an empty turn goes straight back to recvmmsg, the duty
// cycle running every idleTurns of them or when a command waits.
func (h *Handler) Run(ctx context.Context) error {
	if !h.running.CompareAndSwap(false, true) {
		return errors.New("feed: Run called twice, or after Close")
	}
	e := h.Engine
	defer func() {
		h.poller.Close()
		e.stop(time.Now().UnixNano())
	}()
	busy := e.cfg.BusyPoll
	if busy || e.cfg.PinCPU {
		cpu := -1
		if e.cfg.PinCPU {
			cpu = e.cfg.CPU
		}
		release, err := cpupin.Lock(cpu)
		if err != nil {
			return fmt.Errorf("feed: %w", err)
		}
		defer release()
	}
	if busy {
		if err := h.poller.SetBusyPoll(e.cfg.BusyPollMicros); err != nil {
			e.log.Info("busy poll: SO_BUSY_POLL not permitted, spinning on recvmmsg without it", "err", err)
		} else {
			e.log.Info("busy poll: SO_BUSY_POLL set", "usec", e.cfg.BusyPollMicros)
		}
	}
	msgs := make([]mcast.Message, e.cfg.Batch)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
	}
	var done atomic.Bool // set when ctx ends: cheaper than ctx.Err in a spinning loop
	stop := context.AfterFunc(ctx, func() { done.Store(true); h.poller.Wake() })
	defer stop()
	warm := busy && !e.cfg.NoWarm
	idle := 0  // empty busy-poll turns since the duty cycle last ran
	quiet := 0 // empty busy-poll turns since the last datagram
	for !done.Load() {
		var n int
		var err error
		if busy {
			n, err = h.poller.Poll(msgs)
		} else {
			n, err = h.poller.ReadBatch(msgs, h.pollWait())
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("feed: read: %w", err)
		}
		if n == 0 && busy {
			// Nothing arrived. Once the line has been quiet for quietTurns, or when half
			// the queue of held stamps is full (a steady rate whose datagrams come a few
			// turns apart never leaves the line quiet that long), record one held
			// message's latencies a turn (latency.go); every warmEvery turns, touch one
			// instrument's state and decode the last incremental again (warm.go). Then
			// spin again at once: the clock read and the duty cycle (commands, timers,
			// faults held) would lengthen every empty turn by a fifth: they run every
			// idleTurns empty turns, or at once for a command.
			if quiet++; quiet >= quietTurns || e.npending >= pendingStamps/2 {
				e.recordHeld()
			}
			if warm && quiet%warmEvery == 0 {
				e.warmNext()
				e.warmDecode()
			}
			if idle++; idle < idleTurns && len(e.queue.ch) == 0 {
				continue
			}
		} else {
			quiet = 0
		}
		idle = 0
		t := time.Now()
		e.setBase(t) // the batch's clock (latency.go)
		now := t.UnixNano()
		if n > 0 {
			e.lastInc = nil // this read overwrote the buffer it aliased
		}
		for i := range msgs[:n] {
			m := &msgs[i]
			if m.Truncated {
				e.stats.DecodeErrors++
				e.log.Debug("datagram truncated", "from", m.Addr, "longer_than", len(m.Buf))
				continue
			}
			if src := e.cfg.Source; src.IsValid() && m.Addr.Addr().Unmap() != src {
				// Source-specific joins make the kernel filter; this catches a socket
				// another program joined to the group without the filter.
				e.stats.ForeignSource++
				e.log.Debug("datagram from a foreign source dropped", "from", m.Addr, "source", src)
				continue
			}
			e.receiveOn(m.Group, m.Buf[:m.N], now, m.KernelTime)
		}
		if n == 0 && !busy {
			e.flushStages() // idle: record the stamps of the messages applied (latency.go)
		}
		if n == 0 && e.inj != nil {
			e.now = now
			e.inj.flush(now, e.emit)
		}
		e.DoWork(now)
	}
	e.finish(time.Now().UnixNano())
	return ctx.Err()
}

// Timer granularity of Run: with faults holding datagrams, the loop wakes every
// millisecond; with a hole open or a recovery out, at the first of their deadlines
// (Engine.TimerWait), a millisecond at the soonest; with commands left in the queue, at once;
// otherwise only for datagrams and for commands (Do, Subscribe, recovery answers, the
// end of its context), which wake it, and at idleWait at the latest. An idle handler
// costs next to no CPU.
const (
	busyWait = time.Millisecond
	idleWait = 250 * time.Millisecond
	// idleTurns is how many empty turns a busy-polling Run makes between duty cycles
	// (Engine.DoWork) when no command waits: tens of microseconds at a few hundred
	// nanoseconds a turn, well within the timers' millisecond.
	idleTurns = 64
	// quietTurns is how many empty turns in a row (several µs) tell a busy-polling Run
	// that the publisher's burst is over: only then does it record the latencies held
	// (a microsecond a message, cold histograms), so that they never delay a datagram of
	// the burst. From half full, the queue is recorded a message an empty turn however
	// short the quiet; a queue that fills is recorded at once (Engine.recordLatency).
	quietTurns = 16
)

func (h *Handler) pollWait() time.Duration {
	e := h.Engine
	switch {
	case len(e.queue.ch) > 0:
		return 0
	case e.inj != nil && e.inj.nh > 0:
		return busyWait
	case len(e.active) > 0:
		// Holes and retransmissions time out within milliseconds, snapshot requests
		// within seconds: wake for the first deadline, not every millisecond (100
		// handlers waiting for snapshots would spend the CPUs waking).
		return max(busyWait, e.TimerWait(time.Now().UnixNano(), idleWait))
	}
	return idleWait
}

// Close releases the sockets of a handler whose Run was never called. While Run runs,
// end its context instead.
func (h *Handler) Close() {
	if h.running.CompareAndSwap(false, true) {
		h.poller.Close()
		h.Engine.stop(time.Now().UnixNano())
	}
}
