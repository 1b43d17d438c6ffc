package replay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
)

// RecordConfig configures Record.
type RecordConfig struct {
	// Poller is joined to the groups to record (mcast.Poller.JoinGroup); Record
	// reads it until ctx ends and joins more groups through it with Definitions.
	Poller *mcast.Poller
	// Writer receives every datagram; Record flushes it every FlushEvery
	// (default 100ms) so that the file can be read while it grows, and at the end,
	// but does not close it.
	Writer     *Writer
	FlushEvery time.Duration

	// Definitions, if valid, is the instrument definitions channel, already
	// joined: every SecurityDefinition read on it names the channel of an
	// instrument, which Record joins the first time it is named (--all). Codec
	// decodes them.
	Definitions netip.AddrPort
	Codec       *md.Codec
	// Key, when set, authenticates the definitions (package mcast/dgauth) before they
	// are believed: a forged one makes Record join nothing. Every datagram is written to
	// the capture as received, trailer and all, forged or not; replay checks them.
	Key *dgauth.Key

	// Joined, if set, is called for each group Record joins itself.
	Joined func(group netip.AddrPort)
}

// RecordStats counts what Record wrote.
type RecordStats struct {
	Datagrams   uint64 // written to the capture
	Bytes       uint64 // UDP payload bytes written
	Truncated   uint64 // datagrams longer than the receive buffer, written cut short
	NoKernelTS  uint64 // datagrams without a kernel timestamp, stamped with the wall clock
	Joined      int    // groups joined through the definitions channel
	KernelDrops uint64 // datagrams the kernel dropped (full receive buffers)
	// AuthFailures counts definitions datagrams whose trailer did not check (Key);
	// they are written but not believed.
	AuthFailures uint64
}

// recordBuf is each datagram's receive buffer: at least the largest UDP payload the
// feed can carry on an Ethernet-sized MTU, with room for jumbo frames.
const recordBuf = 9216

// Record writes every datagram the poller receives to the capture, with the kernel's
// receive timestamp (SO_TIMESTAMPNS, nanoseconds) and the group and port it was sent
// to, until ctx ends; it returns ctx's error only if reading failed before.
func Record(ctx context.Context, cfg RecordConfig) (RecordStats, error) {
	var st RecordStats
	if cfg.Poller == nil || cfg.Writer == nil {
		return st, errors.New("replay: Record needs a poller and a writer")
	}
	if cfg.Definitions.IsValid() && cfg.Codec == nil {
		return st, errors.New("replay: Record with a definitions channel needs a codec")
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 100 * time.Millisecond
	}
	p := cfg.Poller
	defsIdx := -1
	joined := map[netip.AddrPort]bool{}
	for i := 0; i < p.Len(); i++ {
		g := p.Membership(i).Group
		joined[g] = true
		if g == cfg.Definitions {
			defsIdx = i
		}
	}
	if cfg.Definitions.IsValid() && defsIdx < 0 {
		return st, fmt.Errorf("replay: Record: the definitions channel %v is not joined", cfg.Definitions)
	}
	ms := make([]mcast.Message, 64)
	for i := range ms {
		ms[i].Buf = make([]byte, recordBuf)
	}
	groups := make([]netip.AddrPort, p.Len())
	for i := range groups {
		groups[i] = p.Membership(i).Group
	}
	lastFlush := time.Now()
	var err error
	for ctx.Err() == nil {
		var n int
		n, err = p.ReadBatch(ms, 10*time.Millisecond)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				err = nil
			}
			break
		}
		for i := range ms[:n] {
			m := &ms[i]
			ts := m.KernelTime
			if ts == 0 {
				ts = time.Now().UnixNano()
				st.NoKernelTS++
			}
			if m.Truncated {
				st.Truncated++
			}
			payload := m.Buf[:m.N]
			if err = cfg.Writer.WriteUDP(ts, m.Addr, groups[m.Group], payload); err != nil {
				break
			}
			st.Datagrams++
			st.Bytes += uint64(len(payload))
			if m.Group != defsIdx {
				continue
			}
			if cfg.Key != nil {
				opened, aerr := cfg.Key.Open(cfg.Definitions, payload)
				if aerr != nil {
					st.AuthFailures++
					continue
				}
				payload = opened
			}
			if len(payload) < 4 {
				continue
			}
			kind, derr := cfg.Codec.Decode(payload[4:])
			if derr != nil || kind != md.KindDefinition {
				continue
			}
			g, perr := mcast.ParseChannelName(string(cfg.Codec.Definition.Channel))
			if perr != nil || joined[g] {
				continue
			}
			idx, jerr := p.JoinGroup(g)
			if jerr != nil {
				err = fmt.Errorf("replay: record: joining %v: %w", g, jerr)
				break
			}
			joined[g] = true
			for len(groups) <= idx {
				groups = append(groups, netip.AddrPort{})
			}
			groups[idx] = g
			st.Joined++
			if cfg.Joined != nil {
				cfg.Joined(g)
			}
		}
		if err != nil {
			break
		}
		if time.Since(lastFlush) >= cfg.FlushEvery {
			if err = cfg.Writer.Flush(); err != nil {
				break
			}
			lastFlush = time.Now()
		}
	}
	for i := 0; i < p.Len(); i++ {
		st.KernelDrops += p.Drops(i)
	}
	if ferr := cfg.Writer.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	return st, err
}
