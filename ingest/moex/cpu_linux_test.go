package moex

import (
	"runtime"

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
