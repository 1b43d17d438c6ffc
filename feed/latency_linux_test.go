package feed

import (
	"net/netip"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// TestLatenciesPrefaulted: recording into a busy-polling handler's fresh channel
// histograms faults no page on the recording thread (newLatencies writes them at
// creation), where histograms fresh from hdrhistogram.New fault about once per 4 KiB
// touched; and the engine prefaults them in busy-poll mode only.
func TestLatenciesPrefaulted(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	faults := func() int64 {
		var ru unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
			t.Fatal(err)
		}
		return ru.Minflt
	}
	const n = 64 // channels
	record := func(ls []*Latencies) int64 {
		before := faults()
		for _, l := range ls {
			for _, h := range l {
				for v := int64(1); v < maxLatency; v = v*5/4 + 1 { // every bucket range: all the pages
					_ = h.RecordValue(v)
				}
			}
		}
		return faults() - before
	}
	debug.FreeOSMemory() // memory freed by earlier tests goes back to the kernel: what follows is untouched
	fresh := make([]*Latencies, n)
	for i := range fresh {
		var l Latencies
		for s := range l {
			l[s] = hdrhistogram.New(1, maxLatency, channelDigits)
		}
		fresh[i] = &l
	}
	ours := make([]*Latencies, n)
	for i := range ours {
		ours[i] = newLatencies(channelDigits, true)
	}
	control, got := record(fresh), record(ours)
	t.Logf("page faults recording into %d channels' histograms: %d fresh from New, %d from newLatencies", n, control, got)
	if pages := int64(n * NumStages * 28 << 10 / 4096); control < pages/4 {
		t.Fatalf("fresh histograms faulted %d pages of about %d: this allocator handed over written memory, the check below would prove nothing", control, pages)
	}
	if got > control/10 {
		t.Errorf("newLatencies' histograms faulted %d pages while recording, want next to none (fresh ones: %d)", got, control)
	}
	for _, busy := range []bool{false, true} {
		debug.FreeOSMemory()
		next := 0
		e, err := newEngine(Config{Topics: []string{"SBER", "GAZP", "LKOH"}, Templates: templates(t), Port: port, BusyPoll: busy},
			func(netip.AddrPort) (int, error) { next++; return next - 1, nil })
		if err != nil {
			t.Fatal(err)
		}
		var ls []*Latencies
		for _, ch := range e.channels {
			ls = append(ls, ch.lat)
		}
		got := record(ls)
		if want := int64(len(ls)) * int64(NumStages) * 28 << 10 / 4096 / 2; busy && got > 3 || !busy && got < want {
			t.Errorf("busy poll %v: %d faults recording into %d channels' histograms (prefaulted only when busy polling)", busy, got, len(ls))
		}
	}
}
