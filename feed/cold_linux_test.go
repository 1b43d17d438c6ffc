package feed

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkColdDatagram measures what a datagram's handling (Engine.Receive: decode,
// sequencing, book, hand-off) costs when the core did something else since the last one,
// as a busy-polling handler at 10k msgs/s does: 60 empty reads (recvfrom on a socket
// with nothing queued) between two datagrams of a 256-channel stream, with and without
// the handler's warming in every fourth of them (warm.go), and spinning on the clock for
// 100 µs without a syscall. Reported: p50 and p90 of the datagrams' handling (each timed
// with a clock read on each side, about 50 ns of it), not ns/op (an op includes the reads).
func BenchmarkColdDatagram(b *testing.B) {
	var syms []string
	for i := range 256 {
		syms = append(syms, fmt.Sprintf("S%03d", i))
	}
	ds, _ := stream(b, syms, 256*40)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 2048)
	for _, tc := range []struct {
		name       string
		reads      int
		spin       time.Duration
		warm, code bool
	}{
		{name: "hot"},
		{name: "reads=60", reads: 60},
		{name: "reads=60/warm-state", reads: 60, warm: true},
		{name: "reads=60/warm-state+decode", reads: 60, warm: true, code: true},
		{name: "spin=100us", spin: 100 * time.Microsecond},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := benchEngine(b, syms, nil)
			for _, d := range ds[:256*20] { // every book built
				e.Receive(d.Addr, d.Buf, 0)
			}
			ts := make([]time.Duration, 0, b.N)
			i := 256 * 20
			for b.Loop() {
				for k := range tc.reads {
					_, _, _ = unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
					if tc.warm && k%warmEvery == warmEvery-1 {
						e.warmNext()
						if tc.code {
							e.warmDecode()
						}
					}
				}
				if tc.spin > 0 {
					for end := time.Now().Add(tc.spin); time.Now().Before(end); {
					}
				}
				d := &ds[i]
				if i++; i == len(ds) {
					i = 256 * 20 // the stream's second half again: changes of the same levels
				}
				t0 := time.Now()
				e.Receive(d.Addr, d.Buf, 0)
				ts = append(ts, time.Since(t0))
				if tc.code {
					// Receive forgets the caller's payload; Run's reads keep it
					// (lastInc) until the next read, for warmDecode to copy.
					e.lastInc = d.Buf[4:]
				}
			}
			slices.Sort(ts)
			b.ReportMetric(float64(ts[len(ts)/2]), "p50-ns/datagram")
			b.ReportMetric(float64(ts[len(ts)*9/10]), "p90-ns/datagram")
		})
	}
}
