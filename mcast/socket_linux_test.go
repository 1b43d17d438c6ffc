package mcast_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"fastfeed/internal/netns"
	"fastfeed/mcast"

	"golang.org/x/sys/unix"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func newPoller(t testing.TB, cfg mcast.PollerConfig) *mcast.Poller {
	t.Helper()
	netns.Require(t)
	p, err := mcast.NewPoller(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// bothModes runs test with a socket per group and with shared sockets.
func bothModes(t *testing.T, test func(t *testing.T, shared bool)) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) { test(t, shared) })
	}
}

func newSender(t testing.TB, cfg mcast.SenderConfig) *mcast.Sender {
	t.Helper()
	netns.Require(t)
	s, err := mcast.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func join(t testing.TB, p *mcast.Poller, ch string) int {
	t.Helper()
	i, err := p.JoinGroup(netip.MustParseAddrPort(ch))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func buffers(n, size int) []mcast.Message {
	ms := make([]mcast.Message, n)
	for i := range ms {
		ms[i].Buf = make([]byte, size)
	}
	return ms
}

// datagram is a received datagram, copied out of the batch.
type datagram struct {
	group     int
	payload   string
	src       netip.AddrPort
	kt        int64
	truncated bool
}

// readN reads until want datagrams arrived (or 10s passed, a guard against a
// hang, not a timing check), then makes sure nothing more arrives. Loopback
// delivery completes within the sending call, so 50ms of quiet is ample.
func readN(t *testing.T, p *mcast.Poller, want, bufSize, batch int) []datagram {
	t.Helper()
	ms := buffers(batch, bufSize)
	var got []datagram
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		n, err := p.ReadBatch(ms, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		for _, m := range ms[:n] {
			got = append(got, datagram{m.Group, string(m.Buf[:m.N]), m.Addr, m.KernelTime, m.Truncated})
		}
	}
	if len(got) < want {
		t.Fatalf("received %d datagrams, want %d", len(got), want)
	}
	if n, err := p.ReadBatch(ms, 50*time.Millisecond); n != 0 || err != nil {
		t.Fatalf("after the %d expected datagrams, ReadBatch = %d, %v; first extra %q from group %d",
			want, n, err, ms[0].Buf[:ms[0].N], ms[0].Group)
	}
	return got
}

func send(t *testing.T, s *mcast.Sender, ms []mcast.Message) {
	t.Helper()
	n, err := s.WriteBatch(ms)
	if err != nil || n != len(ms) {
		t.Fatalf("WriteBatch sent %d of %d: %v", n, len(ms), err)
	}
	for i, m := range ms {
		if m.N != len(m.Buf) {
			t.Fatalf("message %d: N = %d, want %d", i, m.N, len(m.Buf))
		}
	}
}

// TestGroupIsolation sends to several groups on one port, one group not
// joined and one joined group on another port, in one WriteBatch, and
// checks that every socket sees exactly its own group's datagrams, in order,
// from the sender, with kernel timestamps.
func TestGroupIsolation(t *testing.T) { bothModes(t, testGroupIsolation) }

func testGroupIsolation(t *testing.T, shared bool) {
	p := newPoller(t, mcast.PollerConfig{Shared: shared})
	s := newSender(t, mcast.SenderConfig{})
	joined := []string{"239.1.0.1:30001", "239.1.0.2:30001", "239.1.0.3:30001", "239.200.7.9:30001", "239.1.0.1:30002"}
	idx := map[string]int{}
	for _, ch := range joined {
		idx[ch] = join(t, p, ch)
	}
	targets := append([]string{"239.1.0.4:30001", "239.1.0.2:30003"}, joined...) // two nobody joined
	const rounds = 20
	var out []mcast.Message
	for r := 0; r < rounds; r++ {
		for _, ch := range targets {
			payload := fmt.Sprintf("%s#%03d%s", ch, r, strings.Repeat(".", r*7))
			out = append(out, mcast.Message{Buf: []byte(payload), Addr: netip.MustParseAddrPort(ch)})
		}
	}
	before := time.Now().UnixNano()
	send(t, s, out)
	got := readN(t, p, rounds*len(joined), 512, 16)
	after := time.Now().UnixNano()

	next := map[int]int{}
	for _, d := range got {
		if d.group < 0 || d.group >= p.Len() {
			t.Fatalf("datagram %q from socket %d of %d", d.payload, d.group, p.Len())
		}
		ch := p.Membership(d.group).Group.String()
		want := fmt.Sprintf("%s#%03d%s", ch, next[d.group], strings.Repeat(".", next[d.group]*7))
		if d.payload != want {
			t.Errorf("socket %d (%s) got %q, want %q", d.group, ch, d.payload, want)
		}
		next[d.group]++
		if d.src != s.LocalAddr() {
			t.Errorf("source %v, want the sender's %v", d.src, s.LocalAddr())
		}
		// A sanity window of an hour, not a timing assertion.
		if d.kt < before-int64(time.Hour) || d.kt > after+int64(time.Hour) {
			t.Errorf("kernel time %d outside [%d, %d]", d.kt, before, after)
		}
		if d.truncated {
			t.Errorf("%q marked truncated", d.payload)
		}
	}
	for _, ch := range joined {
		if next[idx[ch]] != rounds {
			t.Errorf("%s got %d datagrams, want %d", ch, next[idx[ch]], rounds)
		}
	}
	if s.LocalAddr().Addr() != loopback || s.LocalAddr().Port() == 0 {
		t.Errorf("sender local address %v, want 127.0.0.1:port", s.LocalAddr())
	}
}

// TestBatching sends 1,000 datagrams of 64..300 bytes to eight groups in
// one call, and in chunks of 7, and checks that ReadBatch returns them in
// batches, in order per group.
func TestBatching(t *testing.T) { bothModes(t, testBatching) }

func testBatching(t *testing.T, shared bool) {
	for _, sendBatch := range []int{0, 7} {
		t.Run(fmt.Sprintf("sendBatch=%d", sendBatch), func(t *testing.T) {
			p := newPoller(t, mcast.PollerConfig{Shared: shared, ReadBuffer: 1 << 20, BatchSize: 32})
			s := newSender(t, mcast.SenderConfig{BatchSize: sendBatch})
			groups := make([]netip.AddrPort, 8)
			for i := range groups {
				groups[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 2, 0, byte(i + 1)}), 31000)
				if _, err := p.JoinGroup(groups[i]); err != nil {
					t.Fatal(err)
				}
			}
			out := datagrams(1000, groups)
			send(t, s, out)

			ms := buffers(100, 400)
			seq := make([]uint32, len(groups))
			total, biggest := 0, 0
			for total < len(out) {
				n, err := p.ReadBatch(ms, 10*time.Second)
				if err != nil || n == 0 {
					t.Fatalf("after %d datagrams: ReadBatch = %d, %v", total, n, err)
				}
				biggest = max(biggest, n)
				for _, m := range ms[:n] {
					g := m.Group
					want := out[int(seq[g])*len(groups)+g].Buf
					if string(m.Buf[:m.N]) != string(want) {
						t.Fatalf("group %d datagram %d: %d bytes differ from the %d sent", g, seq[g], m.N, len(want))
					}
					seq[g]++
				}
				total += n
			}
			if biggest < 2 {
				t.Errorf("ReadBatch never returned more than %d datagram", biggest)
			}
			if k, _ := p.ReadBatch(ms, 0); k != 0 {
				t.Errorf("%d datagrams more than sent", k)
			}
		})
	}
}

// datagrams returns n messages of 64..300 bytes, round robin over groups,
// each starting with its sequence number in its group.
func datagrams(n int, groups []netip.AddrPort) []mcast.Message {
	ms := make([]mcast.Message, n)
	for i := range ms {
		b := make([]byte, 64+(i*37)%237)
		binary.LittleEndian.PutUint32(b, uint32(i/len(groups)))
		for j := 4; j < len(b); j++ {
			b[j] = byte(i + j)
		}
		ms[i] = mcast.Message{Buf: b, Addr: groups[i%len(groups)]}
	}
	return ms
}

// TestSourceSpecific joins one group for source 127.0.0.2, for 127.0.0.3
// and for any source, and sends from 127.0.0.1, .2 and .3 (lo covers
// 127.0.0.0/8).
func TestSourceSpecific(t *testing.T) { bothModes(t, testSourceSpecific) }

func testSourceSpecific(t *testing.T, shared bool) {
	p := newPoller(t, mcast.PollerConfig{Shared: shared})
	g := netip.MustParseAddrPort("239.3.3.3:32000")
	src2, src3 := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	only2, err := p.JoinSourceSpecificGroup(g, src2)
	if err != nil {
		t.Fatal(err)
	}
	only3, err := p.JoinSourceSpecificGroup(g, src3)
	if err != nil {
		t.Fatal(err)
	}
	anySrc := join(t, p, g.String())
	if m := p.Membership(only2); m.Source != src2 || m.Group != g {
		t.Errorf("membership %+v", m)
	}
	for _, src := range []netip.Addr{loopback, src2, src3} {
		s := newSender(t, mcast.SenderConfig{Interface: src})
		for i := 0; i < 5; i++ {
			if err := s.WriteTo([]byte(src.String()), g); err != nil {
				t.Fatal(err)
			}
		}
	}
	counts := map[int]map[string]int{}
	for _, d := range readN(t, p, 5+5+15, 64, 8) {
		if counts[d.group] == nil {
			counts[d.group] = map[string]int{}
		}
		if d.payload != d.src.Addr().String() {
			t.Errorf("payload %q from %v", d.payload, d.src)
		}
		counts[d.group][d.src.Addr().String()]++
	}
	want := map[int]map[string]int{
		only2:  {"127.0.0.2": 5},
		only3:  {"127.0.0.3": 5},
		anySrc: {"127.0.0.1": 5, "127.0.0.2": 5, "127.0.0.3": 5},
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("datagrams per socket and source: %v, want %v", counts, want)
	}
}

func TestTruncated(t *testing.T) { bothModes(t, testTruncated) }

func testTruncated(t *testing.T, shared bool) {
	p := newPoller(t, mcast.PollerConfig{Shared: shared})
	s := newSender(t, mcast.SenderConfig{})
	g := netip.MustParseAddrPort("239.4.4.4:32001")
	p.JoinGroup(g)
	if err := s.WriteTo([]byte("0123456789abcdefghij"), g); err != nil {
		t.Fatal(err)
	}
	got := readN(t, p, 1, 8, 4)
	if got[0].payload != "01234567" || !got[0].truncated {
		t.Errorf("got %q truncated=%v, want the first 8 bytes, truncated", got[0].payload, got[0].truncated)
	}
}

func procInt(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestReadBufferGranted checks what is reported against what the kernel
// allows: Linux doubles a request, and caps SO_RCVBUF at net.core.rmem_max
// unless SO_RCVBUFFORCE is permitted (it is not, in a user namespace).
func TestReadBufferGranted(t *testing.T) {
	rmemMax := procInt(t, "/proc/sys/net/core/rmem_max")
	for _, tc := range []struct {
		ask   int
		wants []int
	}{
		{64 << 10, []int{2 * (64 << 10)}},
		{64 << 20, []int{2 * min(64<<20, rmemMax), 2 * (64 << 20)}},
		{0, []int{procInt(t, "/proc/sys/net/core/rmem_default")}},
	} {
		p := newPoller(t, mcast.PollerConfig{ReadBuffer: tc.ask})
		i := join(t, p, "239.5.5.5:32002")
		got := p.Membership(i).ReadBuffer
		ok := false
		for _, w := range tc.wants {
			ok = ok || got == w
		}
		if !ok {
			t.Errorf("ReadBuffer %d: granted %d reported, want one of %v (rmem_max %d)", tc.ask, got, tc.wants, rmemMax)
		}
	}
}

// TestDrops overflows a small receive buffer and checks that the drops are
// counted: by the SO_RXQ_OVFL of the next datagram, and by KernelDrops.
func TestDrops(t *testing.T) { bothModes(t, testDrops) }

func testDrops(t *testing.T, shared bool) {
	p := newPoller(t, mcast.PollerConfig{Shared: shared, ReadBuffer: 1}) // the kernel's minimum
	s := newSender(t, mcast.SenderConfig{})
	g := netip.MustParseAddrPort("239.6.6.6:32003")
	i := join(t, p, g.String())
	const sent = 200
	groups := []netip.AddrPort{g}
	for k := 0; k < sent; k += 50 {
		send(t, s, datagrams(50, groups))
	}
	ms := buffers(64, 512)
	received := 0
	var dropped uint64
	deadline := time.Now().Add(10 * time.Second)
	for uint64(received)+dropped < sent && time.Now().Before(deadline) {
		n, err := p.ReadBatch(ms, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		received += n
		if n == 0 {
			if dropped, err = p.KernelDrops(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if dropped == 0 || uint64(received)+dropped != sent {
		t.Fatalf("received %d, kernel dropped %d: want drops, and %d in all", received, dropped, sent)
	}
	if p.Drops(i) != dropped || p.Membership(i).Drops != dropped {
		t.Errorf("Drops %d, Membership.Drops %d, want %d", p.Drops(i), p.Membership(i).Drops, dropped)
	}

	// A fresh Poller learns the count from the next datagram's SO_RXQ_OVFL.
	p2 := newPoller(t, mcast.PollerConfig{Shared: shared, ReadBuffer: 1})
	j := join(t, p2, "239.6.6.7:32003")
	send(t, s, datagrams(sent, []netip.AddrPort{netip.MustParseAddrPort("239.6.6.7:32003")}))
	kernel, err := p2.KernelDrops(j) // what the kernel says now
	if err != nil || kernel == 0 {
		t.Fatalf("KernelDrops = %d, %v; want drops", kernel, err)
	}
	readN(t, p2, sent-int(kernel), 512, 64)
	if err := s.WriteTo([]byte("after"), netip.MustParseAddrPort("239.6.6.7:32003")); err != nil {
		t.Fatal(err)
	}
	last := readN(t, p2, 1, 512, 4)
	if last[0].payload != "after" || p2.Drops(j) != kernel {
		t.Errorf("after the overflow: got %q, Drops %d, want \"after\" and %d", last[0].payload, p2.Drops(j), kernel)
	}
}

// maxMemberships returns a setter of net.ipv4.igmp_max_memberships, the groups one socket
// may join, in the test's namespace; the value it had is put back when the test ends.
func maxMemberships(t *testing.T) func(v string) {
	t.Helper()
	const knob = "/proc/sys/net/ipv4/igmp_max_memberships"
	netns.Require(t) // the knob is per network namespace: never touch the host's
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Fatal(err)
	}
	set := func(v string) {
		if err := os.WriteFile(knob, []byte(v), 0o644); err != nil {
			t.Fatalf("set %s in the test's namespace: %v", knob, err)
		}
	}
	t.Cleanup(func() { set(string(old)) })
	return set
}

// TestMaxMemberships makes the kernel refuse a join (the limit is per
// socket, so with one socket per group it bites only at 0) and checks the
// error names the sysctl and its value.
func TestMaxMemberships(t *testing.T) {
	set := maxMemberships(t)
	set("1")
	p := newPoller(t, mcast.PollerConfig{})
	for k := 1; k <= 3; k++ {
		join(t, p, fmt.Sprintf("239.7.7.%d:32004", k)) // one membership per socket
	}
	set("0")
	_, err := p.JoinGroup(netip.MustParseAddrPort("239.7.7.9:32004"))
	if !errors.Is(err, unix.ENOBUFS) || !strings.Contains(err.Error(), "net.ipv4.igmp_max_memberships is 0") {
		t.Fatalf("join over the limit: err %v, want ENOBUFS naming net.ipv4.igmp_max_memberships is 0", err)
	}
	_, err = p.JoinSourceSpecificGroup(netip.MustParseAddrPort("239.7.7.9:32004"), netip.MustParseAddr("127.0.0.2"))
	if !errors.Is(err, unix.ENOBUFS) || !strings.Contains(err.Error(), "igmp_max_memberships is 0") {
		t.Fatalf("source-specific join over the limit: err %v", err)
	}
	if p.Len() != 3 {
		t.Errorf("Len %d after failed joins, want 3", p.Len())
	}
	// Shared: a fresh socket that may join nothing is an error too, and is closed.
	s := newPoller(t, mcast.PollerConfig{Shared: true})
	if _, err := s.JoinGroup(netip.MustParseAddrPort("239.7.7.9:32004")); !errors.Is(err, unix.ENOBUFS) ||
		!strings.Contains(err.Error(), "igmp_max_memberships is 0") || s.Sockets() != 0 || s.Len() != 0 {
		t.Errorf("shared join over the limit: err %v, %d sockets, Len %d", err, s.Sockets(), s.Len())
	}
}

// TestSharedSockets: with PollerConfig.Shared, the groups of a port share sockets, as
// many groups to a socket as the kernel allows (net.ipv4.igmp_max_memberships, set to 4
// in the test's namespace), each datagram reaches the membership of its group, a
// unicast datagram to the port is counted as a stray and dropped, and leaving a socket's
// last group closes it.
func TestSharedSockets(t *testing.T) {
	maxMemberships(t)("4")

	p := newPoller(t, mcast.PollerConfig{Shared: true})
	var groups []netip.AddrPort
	for k := range 10 { // 4 + 4 + 2 on port 32012
		groups = append(groups, netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 17, 0, byte(k + 1)}), 32012))
	}
	groups = append(groups, netip.MustParseAddrPort("239.17.0.1:32013"), netip.MustParseAddrPort("239.17.0.2:32013"))
	idx := map[netip.AddrPort]int{}
	for _, g := range groups {
		idx[g] = join(t, p, g.String())
	}
	if p.Sockets() != 4 || p.Len() != len(groups) {
		t.Fatalf("%d groups on %d sockets (Len %d), want 4 sockets: 3 for port 32012, 1 for 32013", len(groups), p.Sockets(), p.Len())
	}
	s := newSender(t, mcast.SenderConfig{})
	out := datagrams(10*len(groups), groups)
	send(t, s, out)
	u, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 32012})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write([]byte("unicast to the port")); err != nil {
		t.Fatal(err)
	}
	next := map[int]uint32{}
	for _, d := range readN(t, p, len(out), 512, 16) {
		if seq := binary.LittleEndian.Uint32([]byte(d.payload)); seq != next[d.group] {
			t.Fatalf("membership %d (%v): datagram %d, want %d", d.group, p.Membership(d.group).Group, seq, next[d.group])
		}
		next[d.group]++
	}
	for _, g := range groups {
		if next[idx[g]] != 10 {
			t.Errorf("%v: %d datagrams, want 10", g, next[idx[g]])
		}
	}
	if p.Strays() != 1 {
		t.Errorf("Strays %d, want 1 (the unicast datagram)", p.Strays())
	}

	// Leave the last two groups of port 32012 (the third socket's) and one of the first.
	for _, g := range []netip.AddrPort{groups[8], groups[9], groups[0]} {
		if err := p.LeaveGroup(idx[g]); err != nil {
			t.Fatal(err)
		}
	}
	if p.Sockets() != 3 {
		t.Errorf("%d sockets after the third socket's groups left, want 3", p.Sockets())
	}
	send(t, s, []mcast.Message{
		{Buf: []byte("left"), Addr: groups[0]}, {Buf: []byte("left"), Addr: groups[9]},
		{Buf: []byte("kept"), Addr: groups[1]},
	})
	if got := readN(t, p, 1, 64, 4); got[0].payload != "kept" || got[0].group != idx[groups[1]] {
		t.Errorf("after leaving: got %+v, want \"kept\" on membership %d", got[0], idx[groups[1]])
	}
	// The room left by the group that left is used again.
	join(t, p, "239.17.1.1:32012")
	if p.Sockets() != 3 {
		t.Errorf("%d sockets after a join into a free place, want 3", p.Sockets())
	}
}

// TestSharedArrivalOrder: a shared socket delivers its groups' datagrams in the order
// they arrived, so a quiet group's datagram sent after a busy group's burst comes right
// after the burst (with a socket per group, TestFairness: before its end).
func TestSharedArrivalOrder(t *testing.T) {
	p := newPoller(t, mcast.PollerConfig{ReadBuffer: 1 << 20, Shared: true})
	s := newSender(t, mcast.SenderConfig{})
	busy := netip.MustParseAddrPort("239.9.1.1:32014")
	quiet := netip.MustParseAddrPort("239.9.1.2:32014")
	b := join(t, p, busy.String())
	q := join(t, p, quiet.String())
	send(t, s, datagrams(500, []netip.AddrPort{busy}))
	send(t, s, []mcast.Message{{Buf: []byte("quiet"), Addr: quiet}})
	got := readN(t, p, 501, 512, 16)
	for i, d := range got[:500] {
		if d.group != b || binary.LittleEndian.Uint32([]byte(d.payload)) != uint32(i) {
			t.Fatalf("datagram %d: %+v, want the busy group's %d", i, d, i)
		}
	}
	if got[500].group != q || got[500].payload != "quiet" {
		t.Errorf("last datagram %+v, want the quiet group's", got[500])
	}
}

func TestLeaveGroup(t *testing.T) { bothModes(t, testLeaveGroup) }

func testLeaveGroup(t *testing.T, shared bool) {
	p := newPoller(t, mcast.PollerConfig{Shared: shared})
	s := newSender(t, mcast.SenderConfig{})
	a := join(t, p, "239.8.0.1:32005")
	b := join(t, p, "239.8.0.2:32005")
	if err := p.LeaveGroup(a); err != nil {
		t.Fatal(err)
	}
	if err := p.LeaveGroup(a); err == nil {
		t.Error("second LeaveGroup succeeded")
	}
	send(t, s, []mcast.Message{
		{Buf: []byte("to a"), Addr: netip.MustParseAddrPort("239.8.0.1:32005")},
		{Buf: []byte("to b"), Addr: netip.MustParseAddrPort("239.8.0.2:32005")},
	})
	got := readN(t, p, 1, 64, 4)
	if got[0].group != b || got[0].payload != "to b" || !p.Membership(a).Closed {
		t.Errorf("after leaving a: got %+v, a closed %v", got[0], p.Membership(a).Closed)
	}
	c := join(t, p, "239.8.0.1:32005") // rejoin: a new index
	if c != 2 {
		t.Errorf("rejoin index %d, want 2", c)
	}
}

// TestFairness: a group with more data than one batch does not starve
// another.
func TestFairness(t *testing.T) {
	p := newPoller(t, mcast.PollerConfig{ReadBuffer: 1 << 20})
	s := newSender(t, mcast.SenderConfig{})
	busy := netip.MustParseAddrPort("239.9.0.1:32006")
	quiet := netip.MustParseAddrPort("239.9.0.2:32006")
	join(t, p, busy.String())
	q := join(t, p, quiet.String())
	send(t, s, datagrams(500, []netip.AddrPort{busy}))
	send(t, s, []mcast.Message{{Buf: []byte("quiet"), Addr: quiet}})
	ms := buffers(16, 512)
	for batch := 0; batch < 3; batch++ {
		n, err := p.ReadBatch(ms, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms[:n] {
			if m.Group == q {
				return
			}
		}
	}
	t.Fatal("the quiet group's datagram did not come within 3 batches of 16")
}

func TestReadBatchTimeoutAndClose(t *testing.T) {
	p := newPoller(t, mcast.PollerConfig{})
	join(t, p, "239.10.0.1:32007")
	ms := buffers(4, 64)
	for _, timeout := range []time.Duration{0, time.Millisecond, 20 * time.Millisecond} {
		if n, err := p.ReadBatch(ms, timeout); n != 0 || err != nil {
			t.Errorf("ReadBatch(%v) on a quiet group = %d, %v", timeout, n, err)
		}
	}
	if _, err := p.ReadBatch([]mcast.Message{{}}, 0); err == nil {
		t.Error("ReadBatch with an empty Buf succeeded")
	}

	done := make(chan error, 1)
	go func() {
		_, err := p.ReadBatch(ms, -1) // waits without limit
		// The reader may read its counters at exit, while Close runs.
		if m := p.Membership(0); !m.Closed {
			err = fmt.Errorf("membership %+v not closed after ReadBatch returned %v", m, err)
		}
		if _, kerr := p.KernelDrops(0); kerr != nil {
			err = kerr
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it block; the test passes either way
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked ReadBatch returned %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake a blocked ReadBatch")
	}
	if _, err := p.ReadBatch(ms, 0); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch after Close: %v", err)
	}
	if _, err := p.JoinGroup(netip.MustParseAddrPort("239.10.0.2:32007")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("JoinGroup after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	netns.Require(t)
	for _, cfg := range []mcast.SenderConfig{
		{Interface: netip.MustParseAddr("239.0.0.1")},
		{Interface: netip.MustParseAddr("::1")},
		{Interface: netip.MustParseAddr("0.0.0.0")},
		{TTL: 256}, {TTL: -1}, {BatchSize: 1025}, {WriteBuffer: -1}, {WriteTimeout: -1},
		{Interface: netip.MustParseAddr("192.0.2.1")}, // no interface has it
	} {
		if s, err := mcast.NewSender(cfg); err == nil {
			s.Close()
			t.Errorf("NewSender(%+v) succeeded", cfg)
		}
	}
	for _, cfg := range []mcast.PollerConfig{
		{Interface: netip.MustParseAddr("239.0.0.1")}, {ReadBuffer: -1}, {ReadBuffer: math.MaxInt32}, {BatchSize: -1}, {BatchSize: 2000},
	} {
		if p, err := mcast.NewPoller(cfg); err == nil {
			p.Close()
			t.Errorf("NewPoller(%+v) succeeded", cfg)
		}
	}
	p := newPoller(t, mcast.PollerConfig{})
	join(t, p, "239.11.0.1:32008")
	for _, tc := range []struct {
		group, source, want string
	}{
		{"10.0.0.1:32008", "", "not a multicast address"},
		{"239.11.0.2:0", "", "port 0"},
		{"[ff02::1]:32008", "", "not an IPv4 address"},
		{"239.11.0.1:32008", "", "already joined as socket 0"},
		{"239.11.0.3:32008", "239.0.0.1", "not a unicast IPv4 address"},
		{"239.11.0.3:32008", "0.0.0.0", "not a unicast IPv4 address"},
	} {
		var err error
		if tc.source == "" {
			_, err = p.JoinGroup(netip.MustParseAddrPort(tc.group))
		} else {
			_, err = p.JoinSourceSpecificGroup(netip.MustParseAddrPort(tc.group), netip.MustParseAddr(tc.source))
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("join %s source %q: err %v, want %q", tc.group, tc.source, err, tc.want)
		}
	}
	bp := newPoller(t, mcast.PollerConfig{Interface: netip.MustParseAddr("192.0.2.1")})
	if _, err := bp.JoinGroup(netip.MustParseAddrPort("239.11.0.1:32008")); err == nil || !strings.Contains(err.Error(), "no interface has that address") {
		t.Errorf("join on 192.0.2.1: %v", err)
	}

	// A bad destination in the middle of a batch: the ones before it go.
	s := newSender(t, mcast.SenderConfig{})
	ms := []mcast.Message{
		{Buf: []byte("a"), Addr: netip.MustParseAddrPort("239.11.0.1:32008")},
		{Buf: []byte("b"), Addr: netip.MustParseAddrPort("[ff02::1]:32008")},
		{Buf: []byte("c"), Addr: netip.MustParseAddrPort("239.11.0.1:32008")},
	}
	if n, err := s.WriteBatch(ms); n != 1 || err == nil || !strings.Contains(err.Error(), "datagram 1") {
		t.Errorf("WriteBatch with a bad destination at 1: %d, %v", n, err)
	}
	big := make([]byte, 70000)
	if n, err := s.WriteBatch([]mcast.Message{{Buf: big, Addr: netip.MustParseAddrPort("239.11.0.1:32008")}}); n != 0 || !errors.Is(err, unix.EMSGSIZE) {
		t.Errorf("WriteBatch of a 70000-byte datagram: %d, %v; want EMSGSIZE", n, err)
	}
	if got := readN(t, p, 1, 64, 4); got[0].payload != "a" {
		t.Errorf("got %q", got[0].payload)
	}
}

// TestNoAllocs proves the data path allocates nothing per batch.
func TestNoAllocs(t *testing.T) { bothModes(t, testNoAllocs) }

func testNoAllocs(t *testing.T, shared bool) {
	p := newPoller(t, mcast.PollerConfig{Shared: shared, ReadBuffer: 1 << 20})
	s := newSender(t, mcast.SenderConfig{})
	groups := make([]netip.AddrPort, 4)
	for i := range groups {
		groups[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 12, 0, byte(i + 1)}), 32009)
		p.JoinGroup(groups[i])
	}
	out := datagrams(64, groups)
	in := buffers(64, 512)
	allocs := testing.AllocsPerRun(50, func() {
		if n, err := s.WriteBatch(out); n != len(out) || err != nil {
			t.Fatalf("WriteBatch: %d, %v", n, err)
		}
		for got := 0; got < len(out); {
			n, err := p.ReadBatch(in, time.Second)
			if err != nil || n == 0 {
				t.Fatalf("ReadBatch: %d, %v", n, err)
			}
			got += n
		}
		if err := s.WriteTo(out[0].Buf, groups[0]); err != nil {
			t.Fatal(err)
		}
		if n, err := p.ReadBatch(in[:1], time.Second); n != 1 || err != nil {
			t.Fatalf("ReadBatch: %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("a send and receive batch allocates %v times", allocs)
	}
}

// TestTwoReceivers: two Pollers (as two processes would) join the same group
// and port, and each gets every datagram.
func TestTwoReceivers(t *testing.T) { bothModes(t, testTwoReceivers) }

func testTwoReceivers(t *testing.T, shared bool) {
	p1 := newPoller(t, mcast.PollerConfig{Shared: shared})
	p2 := newPoller(t, mcast.PollerConfig{Shared: shared})
	join(t, p1, "239.14.0.1:32011")
	join(t, p2, "239.14.0.1:32011")
	s := newSender(t, mcast.SenderConfig{})
	send(t, s, datagrams(10, []netip.AddrPort{netip.MustParseAddrPort("239.14.0.1:32011")}))
	readN(t, p1, 10, 512, 4)
	readN(t, p2, 10, 512, 4)
}

// TestPollerWake checks that Wake ends a long wait at once, that a Wake before the wait
// is not lost, and that Wake after Close does nothing.
func TestPollerWake(t *testing.T) {
	p, err := mcast.NewPoller(mcast.PollerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ms := []mcast.Message{{Buf: make([]byte, 64)}}
	p.Wake() // before: the next ReadBatch returns without waiting its hour
	if n, err := p.ReadBatch(ms, time.Hour); n != 0 || err != nil {
		t.Fatalf("ReadBatch after Wake: %d, %v", n, err)
	}
	done := make(chan error, 1)
	go func() {
		n, err := p.ReadBatch(ms, time.Hour)
		if n != 0 && err == nil {
			err = fmt.Errorf("%d datagrams from nowhere", n)
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it block (if it has not yet, the Wake still counts)
	p.Wake()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wake did not end the wait")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p.Wake() // no effect, no panic, no write to a closed descriptor
}
