package feed

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"fastfeed/mcast"
	"fastfeed/md"
)

// stream pre-encodes n datagrams of a realistic feed over symbols: level adds, changes and
// deletes, one entry per datagram, so that the receive side's cost is what is measured.
func stream(b *testing.B, symbols []string, n int) (datagrams []mcast.Message, s *script) {
	t := &testing.T{}
	s = newScript(t)
	for i := 0; len(datagrams) < n; i++ {
		for j, sym := range symbols {
			px := int64(10000 + j*100 + i%20)
			var seq uint32
			switch {
			case i < 20:
				seq = s.update(sym, md.New, md.Bid, px, 100)
			case i%40 < 20:
				seq = s.update(sym, md.Change, md.Bid, px, int64(100+i))
			default:
				seq = s.update(sym, md.Change, md.Bid, px, int64(50+i))
			}
			ch := mcast.ChannelName(channelOf(sym))
			datagrams = append(datagrams, mcast.Message{Buf: s.sent[ch][seq], Addr: channelOf(sym)})
		}
	}
	if t.Failed() {
		b.Fatal("building the stream failed")
	}
	return datagrams[:n], s
}

// blast sends the datagrams in sendmmsg batches as fast as the kernel takes them.
func blast(b *testing.B, ds []mcast.Message) time.Duration {
	snd, err := mcast.NewSender(mcast.SenderConfig{WriteBuffer: 4 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer snd.Close()
	start := time.Now()
	for i := 0; i < len(ds); i += 64 {
		if _, err := snd.WriteBatch(ds[i:min(i+64, len(ds))]); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

var benchSymbols = []string{"SBER", "GAZP", "LKOH", "AAPL", "MSFT", "GMKN", "NVDA", "ROSN"}

// BenchmarkReceive compares, in one run, the handler with a bare recvmmsg loop that only
// drains the same sockets (the kernel's limit on this machine), on the same datagrams sent
// as fast as sendmmsg takes them. Reported: datagrams/s received, kernel drops, and for the
// handler its rate as a share of the bare loop's.
func BenchmarkReceive(b *testing.B) {
	const n = 200000
	ds, _ := stream(b, benchSymbols, n)
	var bare float64
	b.Run("bare", func(b *testing.B) {
		for b.Loop() {
			p, err := mcast.NewPoller(mcast.PollerConfig{ReadBuffer: 32 << 20, BatchSize: 64})
			if err != nil {
				b.Fatal(err)
			}
			for _, sym := range benchSymbols {
				if _, err := p.JoinGroup(channelOf(sym)); err != nil {
					b.Fatal(err)
				}
			}
			msgs := make([]mcast.Message, 64)
			for i := range msgs {
				msgs[i].Buf = make([]byte, 2048)
			}
			got := make(chan int)
			go func() {
				total := 0
				for total < n {
					k, err := p.ReadBatch(msgs, 200*time.Millisecond)
					if err != nil || k == 0 {
						break
					}
					total += k
				}
				got <- total
			}()
			start := time.Now()
			blast(b, ds)
			total := <-got
			elapsed := time.Since(start)
			var drops uint64
			for i := 0; i < p.Len(); i++ {
				drops += p.Drops(i)
			}
			p.Close()
			bare = float64(total) / elapsed.Seconds()
			b.ReportMetric(bare, "datagrams/s")
			b.ReportMetric(float64(drops), "kernel_drops")
			b.ReportMetric(float64(n-total), "lost")
		}
	})
	b.Run("handler", func(b *testing.B) {
		for b.Loop() {
			h, err := New(Config{Topics: benchSymbols, Templates: templates(b), Port: port, ReadBuffer: 32 << 20})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- h.Run(ctx) }()
			start := time.Now()
			blast(b, ds)
			var msgs uint64
			var at time.Time
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				var m uint64
				_ = h.Do(ctx, func() { m = h.stats.Messages })
				if m != msgs {
					msgs, at = m, time.Now()
				}
				if m >= n || time.Since(at) > 200*time.Millisecond {
					break
				}
			}
			cancel()
			<-done
			st := h.Stats()
			rate := float64(st.Messages) / at.Sub(start).Seconds()
			b.ReportMetric(rate, "datagrams/s")
			b.ReportMetric(float64(st.KernelDrops), "kernel_drops")
			b.ReportMetric(float64(n)-float64(st.Messages), "lost")
			if bare > 0 {
				b.ReportMetric(rate/bare, "x_bare")
			}
		}
	})
}

// TestHandlerNoAllocs feeds datagrams straight into the handler's receive path (decode,
// sequence check, book update, subscriber fan-out) and checks it allocates nothing.
func TestHandlerNoAllocs(t *testing.T) {
	h, err := New(Config{Topics: benchSymbols, Templates: templates(t), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var events int
	h.Subscribe(func(*Event) { events++ }, "*")
	h.DoWork(0)
	ds, _ := stream(&testing.B{}, benchSymbols, 20000)
	group := map[netip.AddrPort]int{}
	for i, si := range h.sockets {
		if si.ch != nil {
			group[si.ch.addr] = i
		}
	}
	i := 0
	step := func() {
		d := &ds[i]
		h.receive(group[d.Addr], d.Buf, int64(i))
		i++
	}
	for range 1000 {
		step()
	}
	if a := testing.AllocsPerRun(10000, step); a != 0 {
		t.Errorf("%.2f allocations per datagram", a)
	}
	if h.stats.Messages != uint64(i) || events == 0 || h.stats.BookErrors != 0 {
		t.Errorf("messages %d of %d, events %d, book errors %d", h.stats.Messages, i, events, h.stats.BookErrors)
	}
}

// BenchmarkApply measures the handler's work per datagram without sockets: decode,
// sequence check, book update and subscriber fan-out. The stream is replayed after a
// sequence reset of every channel whenever it runs out.
func BenchmarkApply(b *testing.B) {
	h, err := New(Config{Topics: benchSymbols, Templates: templates(b), Port: port})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ds, _ := stream(b, benchSymbols, 20000)
	group := map[netip.AddrPort]int{}
	for i, si := range h.sockets {
		if si.ch != nil {
			group[si.ch.addr] = i
		}
	}
	groups := make([]int, len(ds))
	for i := range ds {
		groups[i] = group[ds[i].Addr]
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(ds) {
			for _, ch := range h.channels {
				h.reset(ch, 1)
			}
			i = 0
		}
		h.receive(groups[i], ds[i].Buf, 0)
		i++
	}
	if h.stats.BookErrors != 0 || h.stats.DecodeErrors != 0 {
		b.Fatalf("book errors %d, decode errors %d", h.stats.BookErrors, h.stats.DecodeErrors)
	}
}
