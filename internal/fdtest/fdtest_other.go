//go:build !linux

package fdtest

import "testing"

// Child skips t: lowering the limit of open files and counting them is done on Linux
// only.
func Child(t *testing.T, limit uint64) bool {
	t.Skip("fdtest: Linux only")
	return false
}

// Open skips t (Linux only).
func Open(t testing.TB) int { t.Skip("fdtest: Linux only"); return 0 }

// Exhaust skips t (Linux only).
func Exhaust(t testing.TB, spare int) func() { t.Skip("fdtest: Linux only"); return func() {} }

// List returns "" (Linux only).
func List() string { return "" }
