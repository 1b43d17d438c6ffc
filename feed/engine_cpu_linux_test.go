package feed

import (
	"runtime"
	"syscall"
	"testing"
)

// threadCPU measures the CPU time of the benchmark's own thread, which time-slicing on a
// loaded machine does not inflate as it does wall time: start it before b.Loop, call the
// function it returns after, and it reports cpu-ns/op.
func threadCPU(b *testing.B) func() {
	runtime.LockOSThread()
	t0 := rusageThread()
	return func() {
		d := rusageThread() - t0
		runtime.UnlockOSThread()
		if b.N > 0 {
			b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
		}
	}
}

func rusageThread() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
