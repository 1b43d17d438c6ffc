package mcast

import (
	"net/netip"
	"testing"

	"fastfeed/internal/netns"

	"golang.org/x/sys/unix"
)

// TestSocketOptions checks the options a group socket is opened with, of its own and
// shared.
func TestSocketOptions(t *testing.T) {
	netns.Require(t)
	for _, shared := range []bool{false, true} {
		p, err := NewPoller(PollerConfig{Shared: shared})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		i, err := p.JoinGroup(netip.MustParseAddrPort("239.13.0.1:32010"))
		if err != nil {
			t.Fatal(err)
		}
		fd := p.socks[p.members[i].sock].fd
		pktinfo, bound := 0, [4]byte{239, 13, 0, 1}
		if shared {
			pktinfo, bound = 1, [4]byte{}
		}
		for _, o := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
			{"SO_REUSEADDR", unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
			{"SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
			{"SO_RXQ_OVFL", unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1},
			{"SO_TIMESTAMPNS", unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1},
			{"IP_PKTINFO", unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo},
		} {
			v, err := unix.GetsockoptInt(fd, o.level, o.opt)
			if err != nil || v != o.want {
				t.Errorf("shared %v: %s = %d, %v; want %d", shared, o.name, v, err, o.want)
			}
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			t.Fatal(err)
		}
		if in4 := sa.(*unix.SockaddrInet4); in4.Addr != bound || in4.Port != 32010 {
			t.Errorf("shared %v: bound to %v:%d, want %v:32010", shared, in4.Addr, in4.Port, bound)
		}
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_NONBLOCK == 0 {
			t.Errorf("shared %v: socket flags %#x, %v: want O_NONBLOCK", shared, fl, err)
		}
	}

	s, err := NewSender(SenderConfig{TTL: 3, NoLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, o := range []struct {
		name string
		opt  int
		want int
	}{{"IP_MULTICAST_TTL", unix.IP_MULTICAST_TTL, 3}, {"IP_MULTICAST_LOOP", unix.IP_MULTICAST_LOOP, 0}} {
		if v, err := unix.GetsockoptInt(s.fd, unix.IPPROTO_IP, o.opt); err != nil || v != o.want {
			t.Errorf("sender %s = %d, %v; want %d", o.name, v, err, o.want)
		}
	}
	if mreq, err := unix.GetsockoptIPMreqn(s.fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF); err != nil || mreq.Multiaddr != [4]byte{127, 0, 0, 1} {
		// getsockopt IP_MULTICAST_IF returns the in_addr in its first field.
		t.Errorf("sender IP_MULTICAST_IF = %v, %v; want 127.0.0.1", mreq, err)
	}
}
