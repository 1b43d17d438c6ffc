package moex

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"fastfeed/mcast"
)

// MapSources returns a copy of m whose lines' src-ip addresses are replaced as the map
// says: the exchange's sources mapped onto addresses of a private network namespace for
// tests and demos.
func (m *Market) MapSources(to map[netip.Addr]netip.Addr) *Market {
	c := *m
	c.Connections = make([]Connection, len(m.Connections))
	for i, cn := range m.Connections {
		cn.Lines = append([]Line(nil), cn.Lines...)
		for j := range cn.Lines {
			if a, ok := to[cn.Lines[j].Src]; ok {
				cn.Lines[j].Src = a
			}
		}
		c.Connections[i] = cn
	}
	return &c
}

// LiveConfig says how RunLive joins the market's feeds.
type LiveConfig struct {
	// Interface is the address of the interface to join on; the zero value is
	// 127.0.0.1, loopback.
	Interface netip.Addr
	// ReadBuffer is the receive buffer asked for per socket (0: the kernel's default).
	ReadBuffer int
}

// RunLive joins every line (A and B) of every UDP connection of the engine's market,
// source-specific where the line has a src-ip, and feeds the datagrams to e until ctx
// ends; then it gives up the holes still waiting. Do's functions run between batches. Run it inside a private network
// namespace for tests: the exchange's addresses are joined as the configuration says.
func RunLive(ctx context.Context, e *Engine, cfg LiveConfig) error {
	p, err := mcast.NewPoller(mcast.PollerConfig{Interface: cfg.Interface, ReadBuffer: cfg.ReadBuffer, BatchSize: 64})
	if err != nil {
		return fmt.Errorf("moex: live: %w", err)
	}
	defer p.Close()
	var groups []netip.AddrPort // by the poller's socket index
	for _, cn := range e.market.Connections {
		for _, l := range cn.Lines {
			var idx int
			if l.Src.IsValid() {
				idx, err = p.JoinSourceSpecificGroup(l.Group, l.Src)
			} else {
				idx, err = p.JoinGroup(l.Group)
			}
			if err != nil {
				return fmt.Errorf("moex: live: join %s line %s %s: %w", cn.ID, l.ID, l.Group, err)
			}
			for len(groups) <= idx {
				groups = append(groups, netip.AddrPort{})
			}
			groups[idx] = l.Group
		}
	}
	stop := context.AfterFunc(ctx, p.Wake)
	defer stop()
	e.startServing(p.Wake)
	defer e.stopServing()
	// The replay workers outlive ctx by the drain below; they stop before the flush.
	e.startReplay(context.WithoutCancel(ctx), p.Wake)
	defer e.stopReplay()
	ms := make([]mcast.Message, 64)
	for i := range ms {
		ms[i].Buf = make([]byte, 65536)
	}
	for draining := false; ; {
		if !draining && ctx.Err() != nil {
			draining = true // read what the sockets already hold, then stop
		}
		timeout := 50 * time.Millisecond
		if draining {
			timeout = 0
		}
		n, err := p.ReadBatch(ms, timeout)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			return fmt.Errorf("moex: live: %w", err)
		}
		if draining && n == 0 {
			break
		}
		now := time.Now().UnixNano()
		for i := range n {
			m := &ms[i]
			if m.Truncated {
				e.stats.Truncated++
				continue
			}
			e.Datagram(m.Addr, groups[m.Group], m.Buf[:m.N], now)
		}
		e.applyReplays()
		e.Tick(now)
		e.serve()
	}
	e.stopReplay()
	e.Flush()
	e.readKernelDrops(p, len(groups))
	return nil
}

// readKernelDrops adds what the kernel dropped on the poller's n sockets to
// Stats.KernelDrops (the end of a live run).
func (e *Engine) readKernelDrops(p *mcast.Poller, n int) {
	for i := range n {
		if d, err := p.KernelDrops(i); err == nil {
			e.stats.KernelDrops += d
		}
	}
}

// Tick gives up the holes that have waited GapWait by now (a live receiver calls it when
// idle, so that a hole at the end of a burst does not wait for the next datagram).
func (e *Engine) Tick(now int64) {
	e.now = now
	for _, ch := range e.chans {
		e.expire(ch, now)
		e.requestHoles(ch, now)
	}
}
