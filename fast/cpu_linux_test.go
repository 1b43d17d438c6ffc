package fast

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time of the calling thread in nanoseconds: on a machine shared
// with other work, time slices lost to other processes do not count, as they do in ns/op.
func threadCPU() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func lockThread()   { runtime.LockOSThread() }
func unlockThread() { runtime.UnlockOSThread() }

// cpuMetric reports the thread's CPU time per operation as cpu-ns/op (Linux), the figure
// to compare on a loaded machine; call as defer cpuMetric(b)().
func cpuMetric(b *testing.B) func() {
	lockThread()
	start := threadCPU()
	return func() {
		if d := threadCPU() - start; d > 0 && b.N > 0 {
			b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
		}
		unlockThread()
	}
}
