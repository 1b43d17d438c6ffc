package bus

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quickfixgo/quickfix"

	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/md"
)

// BenchmarkOMSFloodLatency measures what a flood of MarketDataRequests from one client
// costs another: the other client's publish-to-client latency in alternating windows,
// quiet and with the flooder sending 10,000 requests per second (MaxRejects high: it is
// never logged out). Reported: the medians over the pairs of windows of the quiet and
// the flood p99 and of their ratio, the flood requests the service answered per second,
// and the process's CPU time per second in each kind of window (robust on a loaded
// machine, where the p99 is not).
// Run it with -benchtime=1x: each iteration is the whole series.
func BenchmarkOMSFloodLatency(b *testing.B) {
	const pairs, window, perSecond = 5, 1500 * time.Millisecond, 10000
	for range b.N {
		m := startMarket(b, 8, 1000, 40000, Config{Users: users(User{Username: "demo", Entitlements: []feed.Pattern{"*"}}),
			RequestLimits: fixsession.RequestLimits{PerSecond: 50, Burst: 50, MaxRejects: 1 << 30},
			SlowLimit:     time.Minute})
		good := m.client(b, "GOOD", "demo")
		if err := good.Subscribe("g", "*"); err != nil {
			b.Fatal(err)
		}
		m.publish()
		waitFor(b, "updates", func() bool { return good.Report().Updates > 100 })
		// p99 returns the p99 of a window and the process's CPU time per second in it.
		p99 := func() (float64, float64) {
			good.ResetLatency()
			c0 := cpuTime()
			time.Sleep(window)
			return float64(good.Latency().ValueAtQuantile(99)) / 1e3, float64(cpuTime()-c0) / float64(time.Millisecond) / window.Seconds()
		}
		var quiet, loud, ratio, rates, qcpu, lcpu []float64
		for k := range pairs {
			q, qc := p99()
			fl := startFlooder(b, m.b.Addr(), "FLOOD"+strconv.Itoa(k), perSecond, window)
			l, lc := p99()
			qcpu, lcpu = append(qcpu, qc), append(lcpu, lc)
			n := fl.stop()
			waitFor(b, "the flooder's end", func() bool {
				for _, cs := range m.b.Clients() {
					if strings.HasSuffix(cs.Session, "FLOOD"+strconv.Itoa(k)) && cs.Connected {
						return false
					}
				}
				return true
			})
			rates = append(rates, float64(n)/window.Seconds())
			quiet, loud, ratio = append(quiet, q), append(loud, l), append(ratio, l/max(q, 1))
			b.Logf("quiet p99 %.0f µs, flood p99 %.0f µs: ratio %.2f; %.0f answers/s; CPU %.0f ms/s quiet, %.0f ms/s in the flood",
				q, l, l/max(q, 1), rates[len(rates)-1], qc, lc)
		}
		b.ReportMetric(median(quiet), "quiet-p99-µs")
		b.ReportMetric(median(loud), "flood-p99-µs")
		b.ReportMetric(median(ratio), "p99-ratio")
		b.ReportMetric(median(rates), "flood-answers/s")
		b.ReportMetric(median(qcpu), "quiet-cpu-ms/s")
		b.ReportMetric(median(lcpu), "flood-cpu-ms/s")
	}
}

// cpuTime returns the CPU time, user and system, the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// flooder sends MarketDataRequests (snapshots of SBER) at perSecond, in batches every
// 10 ms, for a while; it reads and counts every answer.
type flooder struct {
	c       *rawClient
	answers atomic.Int64
	done    chan struct{}
	wg      sync.WaitGroup
}

func startFlooder(tb testing.TB, addr, compID string, perSecond int, d time.Duration) *flooder {
	f := &flooder{c: dialRawBuffer(tb, addr, compID, "demo", 0), done: make(chan struct{})}
	_ = f.c.conn.SetReadDeadline(time.Time{})
	// Built beforehand: the flooder is another process, its CPU not the service's.
	const every = 10 * time.Millisecond
	batch := perSecond * int(every) / int(time.Second)
	batches := floodBatches(&f.c.seq, compID, batch, int(d/every)+1)
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		fr := fixsession.NewFrameReader(f.c.r, 0)
		defer fr.Release()
		for {
			if _, err := fr.Next(); err != nil {
				return
			}
			f.answers.Add(1)
		}
	}()
	go func() {
		defer f.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for _, buf := range batches {
			select {
			case <-f.done:
				return
			case <-tick.C:
			}
			if _, err := f.c.conn.Write(buf); err != nil {
				return
			}
		}
	}()
	return f
}

// floodBatches returns n batches of batch MarketDataRequests (snapshots of SBER) from
// compID, numbered on from *seq.
func floodBatches(seq *int, compID string, batch, n int) [][]byte {
	out := make([][]byte, n)
	now := quickfix.FIXUTCTimestamp{Time: time.Now().UTC()}
	for i := range out {
		var buf []byte
		for range batch {
			*seq++
			req := md.MarketDataRequest{MDReqID: "flood" + strconv.Itoa(*seq), SubscriptionType: md.SubscriptionSnapshot, Symbols: []string{"SBER"}}
			msg := req.ToFIX()
			msg.Header.SetString(8, fixsession.BeginString)
			msg.Header.SetString(49, compID)
			msg.Header.SetString(56, fixsession.OMSCompID)
			msg.Header.SetInt(34, *seq)
			msg.Header.SetField(52, now)
			buf = append(buf, msg.String()...)
		}
		out[i] = buf
	}
	return out
}

// stop closes the flooder's connection and returns the answers it read.
func (f *flooder) stop() int64 {
	close(f.done)
	f.c.conn.Close()
	f.wg.Wait()
	return f.answers.Load()
}
