//go:build !linux

package cpupin

import (
	"errors"
	"fmt"
	"runtime"
)

var errNeedsLinux = errors.New("cpupin: pinning a thread to a CPU needs Linux")

// Check reports whether cpu may be pinned to: only -1 (no pinning) here.
func Check(cpu int) error {
	if cpu == -1 {
		return nil
	}
	return fmt.Errorf("CPU %d: %w", cpu, errNeedsLinux)
}

// Lock locks the calling goroutine to its OS thread; pinning (cpu >= 0) needs Linux.
func Lock(cpu int) (release func(), err error) {
	if err := Check(cpu); err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	return runtime.UnlockOSThread, nil
}

// Current returns an error: it needs Linux.
func Current() ([]int, error) { return nil, errNeedsLinux }
