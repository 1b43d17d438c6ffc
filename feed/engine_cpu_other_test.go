//go:build !linux

package feed

import "testing"

// threadCPU reports nothing where the thread's CPU time is not read.
func threadCPU(*testing.B) func() { return func() {} }
