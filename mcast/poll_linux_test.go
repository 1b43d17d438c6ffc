package mcast_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"fastfeed/mcast"
)

// TestPoll reads with Poll, the busy-polling read, over few sockets (tried in turn with
// recvmmsg alone), over many (epoll_wait without waiting) and over one shared socket:
// every datagram arrives once, in order per group, each Poll's from one socket (of one
// group, or of several when shared), and an empty Poll returns at once.
func TestPoll(t *testing.T) {
	for _, tc := range []struct {
		n      int
		shared bool
	}{{2, false}, {9, false}, {9, true}} {
		n := tc.n
		t.Run(fmt.Sprintf("%d-groups/shared=%v", n, tc.shared), func(t *testing.T) {
			p := newPoller(t, mcast.PollerConfig{ReadBuffer: 1 << 20, BatchSize: 16, Shared: tc.shared})
			if err := p.SetBusyPoll(20); err != nil {
				t.Logf("SO_BUSY_POLL refused (spinning without): %v", err)
			}
			groups := make([]netip.AddrPort, n)
			for i := range groups {
				groups[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 15, byte(n), byte(i + 1)}), 32021)
				join(t, p, groups[i].String())
			}
			s := newSender(t, mcast.SenderConfig{})
			in := buffers(16, 512)
			start := time.Now()
			if got, err := p.Poll(in); got != 0 || err != nil {
				t.Fatalf("Poll of empty sockets = %d, %v", got, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Poll of empty sockets took %v", d)
			}
			out := datagrams(40*n, groups)
			send(t, s, out)
			next := make([]uint32, n) // per group, the next sequence number expected
			mixed := false            // a Poll returned datagrams of several groups
			for got, deadline := 0, time.Now().Add(10*time.Second); got < len(out); {
				if time.Now().After(deadline) {
					t.Fatalf("received %d of %d datagrams", got, len(out))
				}
				k, err := p.Poll(in)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range in[:k] {
					if m.Group != in[0].Group {
						mixed = true
						if !tc.shared {
							t.Fatalf("one Poll returned datagrams of groups %d and %d: it reads one socket", in[0].Group, m.Group)
						}
					}
					if seq := binary.LittleEndian.Uint32(m.Buf); seq != next[m.Group] {
						t.Fatalf("group %d: datagram %d, want %d", m.Group, seq, next[m.Group])
					}
					next[m.Group]++
				}
				got += k
			}
			if k, err := p.Poll(in); k != 0 || err != nil {
				t.Errorf("after every datagram, Poll = %d, %v", k, err)
			}
			if tc.shared && (!mixed || p.Sockets() != 1) {
				t.Errorf("shared: %d sockets, a Poll of several groups %v; want 1 socket read in batches across groups", p.Sockets(), mixed)
			}
			p.Close()
			if _, err := p.Poll(in); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Poll after Close: %v, want net.ErrClosed", err)
			}
		})
	}
}

func TestPollNoAllocs(t *testing.T) {
	for _, tc := range []struct {
		n      int
		shared bool
	}{{2, false}, {9, false}, {9, true}} {
		n := tc.n
		p := newPoller(t, mcast.PollerConfig{ReadBuffer: 1 << 20, Shared: tc.shared})
		groups := make([]netip.AddrPort, n)
		for i := range groups {
			groups[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 16, byte(n), byte(i + 1)}), 32022)
			join(t, p, groups[i].String())
		}
		s := newSender(t, mcast.SenderConfig{})
		out := datagrams(32, groups)
		in := buffers(64, 512)
		allocs := testing.AllocsPerRun(50, func() {
			if k, err := s.WriteBatch(out); k != len(out) || err != nil {
				t.Fatalf("WriteBatch: %d, %v", k, err)
			}
			for got := 0; got < len(out); {
				k, err := p.Poll(in)
				if err != nil {
					t.Fatal(err)
				}
				got += k
			}
			for range 10 { // empty polls
				if k, err := p.Poll(in); k != 0 || err != nil {
					t.Fatalf("Poll: %d, %v", k, err)
				}
			}
		})
		if allocs != 0 {
			t.Errorf("%d groups, shared %v: a send and Poll round allocates %v times", n, tc.shared, allocs)
		}
	}
}

func TestSetBusyPollNegative(t *testing.T) {
	p := newPoller(t, mcast.PollerConfig{})
	if err := p.SetBusyPoll(-1); err == nil || err.Error() != "mcast: SO_BUSY_POLL -1 µs is negative" {
		t.Errorf("SetBusyPoll(-1) = %v", err)
	}
}
