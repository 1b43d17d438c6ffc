//go:build !linux

package fast

import "testing"

// cpuMetric reports nothing where the thread CPU time is not read.
func cpuMetric(*testing.B) func() { return func() {} }

func threadCPU() int64 { return 0 }
func lockThread()      {}
func unlockThread()    {}
