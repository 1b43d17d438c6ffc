package mcast_test

import (
	"net/netip"
	"testing"
	"time"

	"fastfeed/mcast"
)

const benchDatagrams = 1000

// benchSetup joins eight groups and returns 1,000 datagrams of 64..300 bytes
// spread over them, and receive buffers.
func benchSetup(b *testing.B) (*mcast.Poller, *mcast.Sender, []mcast.Message, []mcast.Message) {
	p := newPoller(b, mcast.PollerConfig{ReadBuffer: 4 << 20})
	s := newSender(b, mcast.SenderConfig{})
	groups := make([]netip.AddrPort, 8)
	for i := range groups {
		groups[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 20, 0, byte(i + 1)}), 33000)
		if _, err := p.JoinGroup(groups[i]); err != nil {
			b.Fatal(err)
		}
	}
	return p, s, datagrams(benchDatagrams, groups), buffers(256, 512)
}

func sendAll(b *testing.B, s *mcast.Sender, out []mcast.Message) {
	if n, err := s.WriteBatch(out); n != len(out) || err != nil {
		b.Fatalf("WriteBatch sent %d of %d: %v", n, len(out), err)
	}
}

// readAll reads until the sockets are empty; loopback delivery is complete
// when WriteBatch returns.
func readAll(b *testing.B, p *mcast.Poller, in []mcast.Message) int {
	total := 0
	for {
		n, err := p.ReadBatch(in, 0)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

func perDatagram(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchDatagrams), "ns/datagram")
}

// BenchmarkWriteBatch: one op sends 1,000 datagrams to eight joined groups
// with sendmmsg (the loopback delivery to the receiving sockets included).
func BenchmarkWriteBatch(b *testing.B) {
	p, s, out, in := benchSetup(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sendAll(b, s, out)
		b.StopTimer()
		if got := readAll(b, p, in); got != benchDatagrams {
			b.Fatalf("received %d of %d", got, benchDatagrams)
		}
		b.StartTimer()
	}
	perDatagram(b)
}

// BenchmarkReadBatch: one op reads 1,000 queued datagrams from eight group
// sockets through epoll and recvmmsg.
func BenchmarkReadBatch(b *testing.B) {
	p, s, out, in := benchSetup(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sendAll(b, s, out)
		b.StartTimer()
		if got := readAll(b, p, in); got != benchDatagrams {
			b.Fatalf("received %d of %d", got, benchDatagrams)
		}
	}
	perDatagram(b)
}

func BenchmarkMappingGroup(b *testing.B) {
	m := mcast.DefaultMapping()
	topics := []string{"SBER", "GAZP", "LKOH", "ESZ5-ESH6"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = m.Group(topics[i%len(topics)])
	}
}

// BenchmarkWriteToEach is the baseline for BenchmarkWriteBatch: the same
// 1,000 datagrams with one system call each.
func BenchmarkWriteToEach(b *testing.B) {
	p, s, out, in := benchSetup(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range out {
			if err := s.WriteTo(m.Buf, m.Addr); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if got := readAll(b, p, in); got != benchDatagrams {
			b.Fatalf("received %d of %d", got, benchDatagrams)
		}
		b.StartTimer()
	}
	perDatagram(b)
}

// BenchmarkPollSpread: one op reads 64 queued datagrams, one on each of 64 group sockets
// (the bench's spread: many channels, a datagram or two each), with Poll as a busy-polling
// loop calls it, a clock read after each call with data as feed's Run does.
func BenchmarkPollSpread(b *testing.B) {
	p := newPoller(b, mcast.PollerConfig{ReadBuffer: 1 << 20})
	s := newSender(b, mcast.SenderConfig{})
	groups := make([]netip.AddrPort, 64)
	for i := range groups {
		groups[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 21, 0, byte(i + 1)}), 33001)
		if _, err := p.JoinGroup(groups[i]); err != nil {
			b.Fatal(err)
		}
	}
	out, in := datagrams(len(groups), groups), buffers(64, 512)
	var sink int64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		sendAll(b, s, out)
		b.StartTimer()
		for got := 0; got < len(out); {
			n, err := p.Poll(in)
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				sink += time.Now().UnixNano()
			}
			got += n
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(out)), "ns/datagram")
	_ = sink
}
