package mcast_test

import (
	"fmt"
	"net/netip"
	"time"

	"fastfeed/mcast"
)

// The example runs inside the test's private network namespace.
func ExamplePoller() {
	p, err := mcast.NewPoller(mcast.PollerConfig{}) // joins on loopback
	if err != nil {
		panic(err)
	}
	defer p.Close()
	m := mcast.DefaultMapping()
	sber := netip.AddrPortFrom(m.Group("SBER"), 30001)
	if _, err := p.JoinGroup(sber); err != nil {
		panic(err)
	}

	s, err := mcast.NewSender(mcast.SenderConfig{}) // sends on loopback
	if err != nil {
		panic(err)
	}
	defer s.Close()
	out := []mcast.Message{
		{Buf: []byte("SBER 1"), Addr: sber},
		{Buf: []byte("GAZP 1"), Addr: netip.AddrPortFrom(m.Group("GAZP"), 30001)}, // not joined
		{Buf: []byte("SBER 2"), Addr: sber},
	}
	if _, err := s.WriteBatch(out); err != nil {
		panic(err)
	}

	in := make([]mcast.Message, 8) // allocated once, reused for every batch
	for i := range in {
		in[i].Buf = make([]byte, 1500)
	}
	n, err := p.ReadBatch(in, time.Second)
	if err != nil {
		panic(err)
	}
	for _, msg := range in[:n] {
		fmt.Printf("%s from socket %d (%s)\n", msg.Buf[:msg.N], msg.Group, mcast.ChannelName(p.Membership(msg.Group).Group))
	}
	// Output:
	// SBER 1 from socket 0 (G239.137.173.234:30001)
	// SBER 2 from socket 0 (G239.137.173.234:30001)
}
