//go:build unix

package bench

import "golang.org/x/sys/unix"

// processCounters returns the minor page faults and the involuntary context switches of
// this process so far (getrusage; the sender child's are not included).
func processCounters() (faults, preempted uint64) {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return uint64(ru.Minflt), uint64(ru.Nivcsw)
}

// kernelRelease returns the kernel's release, as uname -r prints it ("" if unknown).
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
