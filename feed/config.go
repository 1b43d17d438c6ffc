package feed

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"fastfeed/fast"
	"fastfeed/gap"
	"fastfeed/internal/cpupin"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
)

// Config configures an Engine and the Handler around it.
type Config struct {
	// Topics are the symbols to follow. With All, every instrument announced on the
	// instrument definitions channel is followed instead.
	Topics []string
	All    bool

	// Interface is the address of the interface to join on; zero means loopback.
	Interface netip.Addr
	// Mapping maps topics to groups; the zero value is the default mapping.
	Mapping mcast.Mapping
	// Port is the UDP port of every channel (default 30001).
	Port uint16
	// DefinitionsGroup is the instrument definitions channel's group (default 239.0.0.0).
	DefinitionsGroup netip.Addr
	// BPort and BBase, when set, give line B: the same groups on BPort, or the groups
	// shifted to BBase (same offset from the mapping's base), or both.
	BPort uint16
	BBase netip.Addr
	// Source, when valid, restricts every join to that sender (source-specific
	// multicast): datagrams from anyone else are never delivered.
	Source netip.Addr

	// Key, when set, authenticates every datagram (package mcast/dgauth): one whose
	// trailer does not check is dropped before the sequence tracker and counted
	// (Stats.AuthFailures). Nil: datagrams carry no trailer and the network is trusted.
	Key *dgauth.Key

	// ReadBuffer is each socket's SO_RCVBUF request (default 8 MiB).
	ReadBuffer int
	// SharedSockets joins the groups of a port on shared sockets (mcast.PollerConfig.Shared)
	// instead of a socket per group: one recvmmsg reads any group, which a busy-polling
	// Run spins on, and a burst across groups is read in one call. Raise
	// net.ipv4.igmp_max_memberships (20 by default) to the groups joined to have one
	// socket per port; below that the Poller opens more.
	SharedSockets bool
	// Batch is how many datagrams one recvmmsg may return (default 64).
	Batch int

	// BusyPoll makes Run spin instead of sleeping: its loop, on a locked OS thread,
	// reads the sockets with recvmmsg(MSG_DONTWAIT) (mcast.Poller.Poll) over and over and
	// never waits in epoll, so a datagram is read as soon as the kernel has queued it,
	// at the cost of a CPU kept busy. It asks for SO_BUSY_POLL (BusyPollMicros) on
	// every socket where the kernel permits it (CAP_NET_ADMIN) and logs once, at Info,
	// when it does not, spinning without. The spin ends with Run's context.
	BusyPoll bool
	// NoWarm stops a busy-polling Run from warming the caches between datagrams: by
	// default, every few empty turns it touches the state of one followed instrument
	// (its channel's sequencer and copy digests, the instrument, its book), round robin,
	// so that a datagram finds its state in the CPU's cache (warm.go). For measuring
	// what warming gives.
	NoWarm bool
	// StageEvery samples the stage breakdown (Stage, DecodeSplit): the stages of one
	// incremental in StageEvery of each channel's are timed (default 8; 1 times every
	// one). Tick-to-handler (StageTotal, Latency) is timed for every message. Each stage
	// timed costs a clock read on the message's path, some 25 ns, and its histograms a
	// dozen records; one in 8 takes two clock reads off seven messages in eight, and the
	// breakdown's percentiles are then a sample's (latency.go).
	StageEvery int
	// BusyPollMicros is the SO_BUSY_POLL of BusyPoll, in microseconds (default 50).
	BusyPollMicros int
	// PinCPU pins the OS thread of Run's loop to CPU (sched_setaffinity), locked to it
	// for the whole Run; CPU must be one the process may run on. Meant with BusyPoll.
	PinCPU bool
	CPU    int

	// Templates are the FAST templates of the feed (fixtures/templates.xml).
	Templates *fast.Templates
	// Gap configures every channel's sequence tracker.
	Gap gap.Config
	// Recovery serves retransmissions and snapshots; nil means none: holes wait for the
	// other line and otherwise leave the books stale.
	Recovery Recovery

	// SnapshotChannels takes snapshots from the publisher's snapshot channels
	// (snapchan.go, docs/snapshot-channels.md) rather than from Recovery: a channel's
	// snapshot channel is its group on port + SnapshotPortOffset (default
	// mcast.DefaultSnapshotPortOffset).
	SnapshotChannels   bool
	SnapshotPortOffset uint16
	// SnapshotAfter, when > 0, sends a hole of more than this many datagrams to
	// snapshots (the snapshot channel with SnapshotChannels) instead of a FIX
	// retransmission: it sets Gap.MaxRequest.
	SnapshotAfter int
	// SnapshotWait is how long a channel waits on its snapshot channel before it asks
	// Recovery as well (default 5s).
	SnapshotWait time.Duration

	// Inject configures receive-path faults for tests; the zero value injects none.
	Inject Inject

	// Logger logs state changes (joins, holes, recovery, stale books) and bad datagrams,
	// all at Debug: a lossy feed makes many; nil discards them.
	Logger *slog.Logger
}

// Inject are receive-path faults, applied to each datagram as it is read (before line
// arbitration), with a deterministic generator seeded by Seed. A datagram meets at most
// one fault: the burst, else loss, else reordering, else delay, else duplication.
type Inject struct {
	Loss    float64 // probability that a datagram is dropped
	Reorder float64 // probability that a datagram is held back and delivered after 1..Window later ones
	Window  int     // reordering window in datagrams (default 1)
	Dup     float64 // probability that a datagram is delivered twice
	Delay   float64 // probability that a datagram is held back for DelayBy
	DelayBy time.Duration
	// Burst datagrams in a row are dropped after the first BurstAt datagrams.
	Burst   int
	BurstAt uint64
	// Line restricts the faults to one line, 'A' or 'B'; 0 means both. The
	// definitions channel counts as line A.
	Line byte
	Seed uint64
}

func (in Inject) active() bool {
	return in.Loss > 0 || in.Reorder > 0 || in.Dup > 0 || in.Delay > 0 || in.Burst > 0
}

// faults reports whether datagrams of line are subject to the faults.
func (in Inject) faults(line gap.Source) bool {
	return in.Line == 0 || (in.Line == 'A') == (line == gap.LineA)
}

// Validate reports the first setting out of range.
func (in Inject) Validate() error {
	for _, p := range []struct {
		name string
		p    float64
	}{{"loss", in.Loss}, {"reorder", in.Reorder}, {"dup", in.Dup}, {"delay", in.Delay}} {
		if !(p.p >= 0 && p.p <= 1) {
			return fmt.Errorf("feed: inject %s probability %v outside 0..1", p.name, p.p)
		}
	}
	switch {
	case in.Window < 0 || in.Window > heldSlots:
		return fmt.Errorf("feed: inject reorder window %d outside 1..%d", in.Window, heldSlots)
	case in.Delay > 0 && in.DelayBy <= 0:
		return fmt.Errorf("feed: inject delay %v with no delay duration", in.Delay)
	case in.DelayBy < 0 || in.DelayBy > time.Minute:
		return fmt.Errorf("feed: inject delay duration %v outside 0..1m", in.DelayBy)
	case in.Burst < 0:
		return fmt.Errorf("feed: inject burst %d is negative", in.Burst)
	case in.Line != 0 && in.Line != 'A' && in.Line != 'B':
		return fmt.Errorf("feed: inject line %q is neither A nor B", in.Line)
	}
	return nil
}

func (c *Config) validate() error {
	if c.Templates == nil {
		return errors.New("feed: no templates")
	}
	if !c.All && len(c.Topics) == 0 {
		return errors.New("feed: no topics (give topics or All)")
	}
	seen := map[string]bool{}
	for _, t := range c.Topics {
		if t == "" {
			return errors.New("feed: empty topic")
		}
		if seen[t] {
			return fmt.Errorf("feed: topic %q given twice", t)
		}
		seen[t] = true
	}
	if err := c.Inject.Validate(); err != nil {
		return err
	}
	if c.Port == 0 {
		c.Port = 30001
	}
	if !c.DefinitionsGroup.IsValid() {
		c.DefinitionsGroup = mcast.DefinitionsChannel(c.Port).Addr()
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = 8 << 20
	}
	if c.Batch <= 0 {
		c.Batch = 64
	}
	if c.StageEvery < 0 {
		return fmt.Errorf("feed: stage sample: one in %d messages is not a sample", c.StageEvery)
	}
	if c.StageEvery == 0 {
		c.StageEvery = DefaultStageEvery
	}
	if c.BusyPollMicros < 0 {
		return fmt.Errorf("feed: busy-poll time %d µs is negative", c.BusyPollMicros)
	}
	if c.BusyPoll && c.BusyPollMicros == 0 {
		c.BusyPollMicros = 50
	}
	if c.PinCPU {
		if err := cpupin.Check(c.CPU); err != nil || c.CPU < 0 {
			if err == nil {
				err = fmt.Errorf("CPU %d is negative", c.CPU)
			}
			return fmt.Errorf("feed: pin: %w", err)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Gap.RecoveryTimeout == 0 {
		c.Gap.RecoveryTimeout = 2 * time.Second
	}
	if c.Recovery == nil {
		c.Gap.NoRecovery = true
	}
	if c.SnapshotPortOffset == 0 {
		c.SnapshotPortOffset = mcast.DefaultSnapshotPortOffset
	}
	if c.SnapshotWait <= 0 {
		c.SnapshotWait = 5 * time.Second
	}
	switch {
	case c.SnapshotAfter < 0:
		return fmt.Errorf("feed: snapshot after %d datagrams is negative", c.SnapshotAfter)
	case c.SnapshotAfter > 0:
		c.Gap.MaxRequest = uint32(c.SnapshotAfter)
	}
	if c.SnapshotChannels {
		if _, err := mcast.SnapshotChannel(netip.AddrPortFrom(c.DefinitionsGroup, c.Port), c.SnapshotPortOffset); err != nil {
			return fmt.Errorf("feed: %w", err)
		}
	}
	return nil
}
