//go:build unix

package bench

import "golang.org/x/sys/unix"

// kernelRelease returns the kernel's release, as uname -r prints it ("" if unknown).
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
