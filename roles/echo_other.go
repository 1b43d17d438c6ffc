//go:build !linux

package roles

import "os"

// echoOff leaves echo on outside Linux: pipe the password in (e.g. read -s) instead.
func echoOff(*os.File) func() { return func() {} }
