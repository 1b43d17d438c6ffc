//go:build !unix

package bench

// processCounters returns zeros: getrusage is Unix's.
func processCounters() (faults, preempted uint64) { return 0, 0 }

// kernelRelease returns "": the report names the OS only.
func kernelRelease() string { return "" }
