package publisher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"fastfeed/internal/netns"
	"fastfeed/mcast"

	"golang.org/x/sys/unix"
)

// benchPublisher returns a publisher warmed up past its opening books and
// one lap of its retention arena, so that the measured ticks are the steady
// state.
func benchPublisher(b *testing.B, instruments int, w batchWriter) (*Publisher, time.Time) {
	p := newPublisher(b, Config{Instruments: generate(b, instruments), RetentionBytes: MinRetentionBytes, Retention: 20000})
	p.w = w
	epoch := time.Now()
	p.clock(epoch)
	p.startup(context.Background())
	for p.ret.tail == 0 || p.st.Incrementals < 20000 {
		p.clock(epoch)
		p.produce(maxTickDatagrams)
		p.send()
	}
	if p.err != nil {
		b.Fatal(p.err)
	}
	return p, epoch
}

// publishN runs send ticks until n more incrementals have gone out: the
// publishing loop's data path without the pacing sleep.
func publishN(b *testing.B, p *Publisher, epoch time.Time, n int) {
	target := p.st.Incrementals + uint64(n)
	for p.st.Incrementals < target {
		p.clock(epoch)
		p.produce(int(min(target-p.st.Incrementals, maxTickDatagrams)))
		p.send()
	}
	if p.err != nil {
		b.Fatal(p.err)
	}
}

func rusage(b *testing.B) (user, sys time.Duration) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// benchPublish measures one op = one incremental datagram (and its share of
// heartbeat-free overhead): simulate, encode, sequence, retain and hand to
// w. It reports datagrams/s, user and system CPU per datagram (getrusage
// RUSAGE_SELF over the run) and the kernel's share of that CPU.
func benchPublish(b *testing.B, instruments int, w batchWriter) {
	p, epoch := benchPublisher(b, instruments, w)
	entries0, bytes0, dg0 := p.st.Entries, p.st.Bytes, p.st.Datagrams
	b.ReportAllocs()
	u0, s0 := rusage(b)
	b.ResetTimer()
	publishN(b, p, epoch, b.N)
	b.StopTimer()
	u1, s1 := rusage(b)
	n := float64(b.N)
	user, sys := float64(u1-u0), float64(s1-s0)
	b.ReportMetric(n/b.Elapsed().Seconds(), "datagrams/s")
	b.ReportMetric(user/n, "user-ns/datagram")
	b.ReportMetric(sys/n, "sys-ns/datagram")
	if user+sys > 0 {
		b.ReportMetric(100*sys/(user+sys), "kernel-%")
	}
	b.ReportMetric(float64(p.st.Entries-entries0)/n, "entries/datagram")
	b.ReportMetric(float64(p.st.Bytes-bytes0)/float64(p.st.Datagrams-dg0), "bytes/datagram")
}

// BenchmarkPublish: the publisher alone, sending with sendmmsg on loopback
// in the test's network namespace (nobody joined: the kernel routes each
// datagram to lo and drops it at the UDP layer).
func BenchmarkPublish(b *testing.B) {
	netns.Require(b)
	for _, n := range []int{100, 2000} {
		b.Run(fmt.Sprintf("instruments=%d", n), func(b *testing.B) {
			s, err := mcast.NewSender(mcast.SenderConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchPublish(b, n, s)
		})
	}
}

// BenchmarkPublishNoSend is BenchmarkPublish without the system call:
// simulate, encode, sequence and retain only.
func BenchmarkPublishNoSend(b *testing.B) {
	for _, n := range []int{100, 2000} {
		b.Run(fmt.Sprintf("instruments=%d", n), func(b *testing.B) {
			benchPublish(b, n, discardWriter{})
		})
	}
}

// BenchmarkSimulatorStep: one market event.
func BenchmarkSimulatorStep(b *testing.B) {
	s := newSim(b, 100, 1)
	buf := runSim(s, 10000)[:0]
	b.ReportAllocs()
	for b.Loop() {
		buf = s.Step(buf[:0])
	}
}
