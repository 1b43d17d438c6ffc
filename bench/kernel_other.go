//go:build !unix

package bench

// kernelRelease returns "": the report names the OS only.
func kernelRelease() string { return "" }
