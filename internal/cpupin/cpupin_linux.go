package cpupin

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Check reports whether cpu may be pinned to: -1 (no pinning), or a CPU in the
// process's affinity set (sched_getaffinity). The error names the CPUs allowed.
func Check(cpu int) error {
	if cpu == -1 {
		return nil
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return fmt.Errorf("cpupin: sched_getaffinity: %w", err)
	}
	if cpu < 0 || cpu >= len(set)*64 || !set.IsSet(cpu) {
		return fmt.Errorf("cpupin: CPU %d is not one this process may run on (allowed: %s)", cpu, cpuList(&set))
	}
	return nil
}

// Lock locks the calling goroutine to its OS thread (runtime.LockOSThread) and, when
// cpu >= 0, pins that thread to cpu (sched_setaffinity). Call release from the same
// goroutine when done: it gives the thread its former affinity back and unlocks it.
func Lock(cpu int) (release func(), err error) {
	if err := Check(cpu); err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	if cpu < 0 {
		return runtime.UnlockOSThread, nil
	}
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("cpupin: sched_getaffinity: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("cpupin: pin to CPU %d: sched_setaffinity: %w", cpu, err)
	}
	return func() {
		if err := unix.SchedSetaffinity(0, &old); err != nil {
			// The thread keeps the pin: let it die with the goroutine's lock instead of
			// returning it to the scheduler's pool pinned.
			return
		}
		runtime.UnlockOSThread()
	}, nil
}

// Current returns the CPUs the calling thread may run on.
func Current() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("cpupin: sched_getaffinity: %w", err)
	}
	var out []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			out = append(out, i)
		}
	}
	return out, nil
}

func cpuList(set *unix.CPUSet) string {
	s := ""
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			if s != "" {
				s += ","
			}
			s += fmt.Sprint(i)
		}
	}
	return s
}
