package feed

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/internal/cpupin"
	"fastfeed/mcast"
	"fastfeed/md"
)

// TestBusyPollReceivesEverything runs the spinning receiver over few sockets (read in
// turn with recvmmsg alone), over many (an epoll_wait that does not wait finds them) and
// over shared sockets (one a port: lines A and B), pinned to a CPU, and the default
// receiver over shared sockets: every datagram is applied and the books equal the
// ground truth.
func TestBusyPollReceivesEverything(t *testing.T) {
	cpus, err := cpupin.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		symbols []string
		lineB   bool
		shared  bool
		epoll   bool // the default receiver, not busy polling
	}{
		{"spin-recvmmsg", []string{"SBER"}, false, false, false},                     // 2 sockets: definitions and SBER
		{"spin-epoll", []string{"SBER", "GAZP", "LKOH", "YNDX"}, true, false, false}, // 9 sockets
		{"spin-shared", []string{"SBER", "GAZP", "LKOH", "YNDX"}, true, true, false}, // 2 sockets: a port each
		{"epoll-shared", []string{"SBER", "GAZP", "LKOH", "YNDX"}, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			cfg := Config{Topics: tc.symbols, BusyPoll: !tc.epoll, PinCPU: true, CPU: cpus[len(cpus)-1], SharedSockets: tc.shared,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
			if tc.lineB {
				cfg.BPort = port + 1
			}
			s := newScript(t)
			h, stop := startHandler(t, cfg)
			if tc.shared { // unicast to the port: a shared socket's stray, dropped and counted
				u, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := u.Write([]byte("not a group's")); err != nil {
					t.Fatal(err)
				}
				u.Close()
			}
			const per = 500
			for i := range per {
				for _, sym := range tc.symbols {
					seq := s.update(sym, md.New, md.Bid, int64(10000+i), int64(1+i%7))
					s.send(sym, seq, false)
					if tc.lineB {
						s.send(sym, seq, true)
					}
				}
			}
			dumpEqual(t, h, s.truthDump(tc.symbols...))
			st := stop()
			// Read once Run has returned (Close leaves the count as it was).
			if want := map[bool]int{false: 1 + len(tc.symbols)*(1+btoi(tc.lineB)), true: 1 + btoi(tc.lineB)}[tc.shared]; h.poller.Sockets() != want {
				t.Errorf("%d sockets, want %d", h.poller.Sockets(), want)
			}
			if want := uint64(per * len(tc.symbols)); st.Messages != want || st.Gaps != 0 || st.KernelDrops != 0 || st.DecodeErrors != 0 {
				t.Errorf("messages %d of %d, gaps %d, kernel drops %d, decode errors %d", st.Messages, want, st.Gaps, st.KernelDrops, st.DecodeErrors)
			}
			if want := uint64(btoi(tc.shared)); st.Strays != want {
				t.Errorf("%d strays, want %d", st.Strays, want)
			}
			if m := h.Messages(); m != st.Messages {
				t.Errorf("Messages() = %d, Stats().Messages %d", m, st.Messages)
			}
			if l := logs.String(); !tc.epoll && !strings.Contains(l, "SO_BUSY_POLL set") && !strings.Contains(l, "SO_BUSY_POLL not permitted") {
				t.Errorf("no busy-poll log line; logs:\n%s", l)
			}
		})
	}
}

// TestBusyPollNoAllocs counts the process's allocations while a spinning handler
// receives and applies datagrams, over a socket per group and over a shared socket:
// neither the empty polls (millions of them) nor the datagrams allocate. What remains is
// the test's own polling of the handler (Do).
func TestBusyPollNoAllocs(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) { testBusyPollNoAllocs(t, shared) })
	}
}

func testBusyPollNoAllocs(t *testing.T, shared bool) {
	symbols := []string{"SBER", "GAZP", "LKOH", "YNDX", "VTBR", "ROSN"}
	s := newScript(t)
	h, stop := startHandler(t, Config{Topics: symbols, BusyPoll: true, SharedSockets: shared})
	h.Subscribe(func(*Event) {}, "*")
	const n = 20000
	type datagram struct {
		b    []byte
		addr netip.AddrPort
	}
	var ds []datagram
	for i := range n {
		sym := symbols[i%len(symbols)]
		seq := s.update(sym, md.New, md.Bid, int64(10000+i), 3)
		ds = append(ds, datagram{s.sent[channelName(sym)][seq], channelOf(sym)})
	}
	// Warm up: the first datagram of each channel builds its book.
	for _, d := range ds[:len(symbols)] {
		if err := s.sender.WriteTo(d.b, d.addr); err != nil {
			t.Fatal(err)
		}
	}
	applied := func() uint64 {
		var m uint64
		if err := h.Do(context.Background(), func() { m = h.Engine.stats.Messages }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for applied() < uint64(len(symbols)) {
		time.Sleep(time.Millisecond)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i, d := range ds[len(symbols):] {
		if err := s.sender.WriteTo(d.b, d.addr); err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 {
			time.Sleep(50 * time.Microsecond) // stay within the socket buffers
		}
	}
	time.Sleep(20 * time.Millisecond) // spin idle for a while too
	polls := 0
	for deadline := time.Now().Add(10 * time.Second); applied() < n && time.Now().Before(deadline); polls++ {
		time.Sleep(time.Millisecond)
	}
	runtime.ReadMemStats(&after)
	st := stop()
	if st.Messages != n || st.Gaps != 0 {
		t.Fatalf("applied %d of %d datagrams, %d gaps", st.Messages, n, st.Gaps)
	}
	// Each Do allocates a little (its closure and command); a per-datagram or per-poll
	// allocation would make thousands.
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d allocations for %d datagrams and %d Do calls", allocs, n-len(symbols), polls)
	if allocs > uint64(1000+10*polls) { // 20,000 datagrams, millions of empty polls
		t.Error("the busy loop allocates")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func channelName(symbol string) string { return mcast.ChannelName(channelOf(symbol)) }

// TestSharedSocketsBufferWarning: with shared sockets, New warns when the kernel granted
// less receive buffer than asked (one buffer for all of a port's groups), and only then. In
// the tests' user namespace SO_RCVBUFFORCE is refused, so asking beyond twice rmem_max
// gets less.
func TestSharedSocketsBufferWarning(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, ask := range []int{64 << 10, min(2*rmemMax+1<<20, math.MaxInt32/2)} {
		var logs bytes.Buffer
		h, err := New(Config{Topics: []string{"SBER", "GAZP"}, Templates: templates(t), SharedSockets: true, ReadBuffer: ask,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		granted := h.Sockets()[0].ReadBuffer
		h.Close()
		warned := strings.Contains(logs.String(), "shared sockets: the kernel granted a smaller receive buffer than asked")
		if warned != (granted < ask) {
			t.Errorf("asked %d, granted %d: warned %v; logs:\n%s", ask, granted, warned, logs.String())
		}
		if ask > 2*rmemMax && !warned {
			t.Errorf("asked %d beyond twice rmem_max (%d), granted %d: no warning", ask, rmemMax, granted)
		}
	}
}

func TestBusyPollConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{PinCPU: true, CPU: -1}, "feed: pin: CPU -1 is negative"},
		{Config{PinCPU: true, CPU: 1 << 20}, "feed: pin: cpupin: CPU 1048576 is not one this process may run on (allowed: "},
		{Config{BusyPoll: true, BusyPollMicros: -3}, "feed: busy-poll time -3 µs is negative"},
		{Config{StageEvery: -2}, "feed: stage sample: one in -2 messages is not a sample"},
	} {
		tc.cfg.Topics, tc.cfg.Templates = []string{"SBER"}, templates(t)
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	cfg := Config{Topics: []string{"SBER"}, Templates: templates(t), BusyPoll: true}
	if err := cfg.validate(); err != nil || cfg.BusyPollMicros != 50 {
		t.Errorf("validate: %v, BusyPollMicros %d, want 50", err, cfg.BusyPollMicros)
	}
}

// BenchmarkBusyPollDatagram is one turn of a busy-polling Run that finds a datagram: it is
// sent on loopback (sendto, on this goroutine, so that no scheduler is involved), read with
// Poll and handed to the engine (receiveOn: sequencing, decode, book, subscriber), the
// stage clocks running as live. Besides ns/op (send included) and allocs/op (0: the turn
// allocates nothing), it reports the p50 of the two parts of kernel rx->decoded
// (DecodeSplit): rx-recv-ns, from the kernel's receive timestamp to the return of Poll (the
// rest of sendto after the timestamp, the kernel's delivery, epoll_wait and recvmmsg: the
// kernel's floor on this machine), of which read-ns is the read (from the return of sendto,
// when loopback has delivered the datagram, to the return of Poll), and recv-decoded-ns,
// our own work up to the decode. It runs with a socket per group (sockets=per-group:
// epoll_wait, then recvmmsg) and with every group on one socket (sockets=shared:
// recvmmsg alone).
func BenchmarkBusyPollDatagram(b *testing.B) {
	for _, shared := range []bool{false, true} {
		name := "sockets=per-group"
		if shared {
			name = "sockets=shared"
		}
		b.Run(name, func(b *testing.B) { benchmarkBusyPollDatagram(b, shared) })
	}
}

func benchmarkBusyPollDatagram(b *testing.B, shared bool) {
	ds, s := stream(b, benchSymbols, 20000)
	sent := time.Now().UnixNano()
	for i := range ds { // with a SendingTime, without which no stage is timed
		if _, err := s.codec.Decode(ds[i].Buf[4:]); err != nil {
			b.Fatal(err)
		}
		inc := s.codec.Message.Incremental
		inc.SendingTime = sent
		buf, err := s.codec.AppendIncremental(ds[i].Buf[:4:4], &inc)
		if err != nil {
			b.Fatal(err)
		}
		ds[i].Buf = buf
	}
	h, err := New(Config{Topics: benchSymbols, Templates: templates(b), Port: port, BusyPoll: true, SharedSockets: shared})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	h.Subscribe(func(*Event) {}, "*")
	h.DoWork(time.Now().UnixNano())
	snd, err := mcast.NewSender(mcast.SenderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer snd.Close()
	msgs := make([]mcast.Message, 64)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
	}
	// The read alone: from the return of sendto (the datagram is in the socket: loopback
	// delivers it within the send) to the return of Poll (epoll_wait and recvmmsg).
	read := hdrhistogram.New(1, int64(time.Second), 3)
	i := 0
	turn := func() {
		if i == len(ds) {
			for _, ch := range h.channels {
				h.reset(ch, 1)
			}
			i = 0
		}
		if err := snd.WriteTo(ds[i].Buf, ds[i].Addr); err != nil {
			b.Fatal(err)
		}
		sent := time.Now().UnixNano()
		i++
		for {
			n, err := h.poller.Poll(msgs)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				continue
			}
			now := time.Now().UnixNano()
			_ = read.RecordValue(now - sent)
			for _, m := range msgs[:n] {
				h.receiveOn(m.Group, m.Buf[:m.N], now, m.KernelTime)
			}
			return
		}
	}
	for range 1000 {
		turn()
	}
	split := h.DecodeSplit()
	split.Received.Reset()
	split.Work.Reset()
	read.Reset()
	b.ReportAllocs()
	for b.Loop() {
		turn()
	}
	if h.stats.BookErrors != 0 || h.stats.DecodeErrors != 0 || split.Received.TotalCount() == 0 {
		b.Fatalf("book errors %d, decode errors %d, %d kernel times, %d decode stages, %d messages", h.stats.BookErrors, h.stats.DecodeErrors, split.Received.TotalCount(), h.stages[StageDecode].TotalCount(), h.stats.Messages)
	}
	b.ReportMetric(float64(split.Received.ValueAtQuantile(50)), "rx-recv-ns")
	b.ReportMetric(float64(split.Work.ValueAtQuantile(50)), "recv-decoded-ns")
	b.ReportMetric(float64(read.ValueAtQuantile(50)), "read-ns")
}
