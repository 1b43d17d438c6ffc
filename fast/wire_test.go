package fast

import (
	"bytes"
	"testing"
)

// TestIsASCII checks the eight-bytes-at-a-time check against the byte loop for every
// length up to 20 and a high byte at every position.
func TestIsASCII(t *testing.T) {
	for n := 0; n <= 20; n++ {
		b := bytes.Repeat([]byte{0x7f}, n)
		if !IsASCII(b) {
			t.Fatalf("IsASCII(%d bytes of 0x7f) = false", n)
		}
		for i := range n {
			c := bytes.Clone(b)
			c[i] = 0x80
			if IsASCII(c) {
				t.Fatalf("IsASCII(% x) = true (0x80 at %d)", c, i)
			}
		}
	}
}

// TestAppendUintLengths checks AppendUint at the boundary of every encoded length,
// against ConsumeUint.
func TestAppendUintLengths(t *testing.T) {
	for k := 1; k <= 10; k++ {
		for _, v := range []uint64{1<<(7*uint(k-1)) - 1, 1 << (7 * uint(k-1)), 1<<(7*uint(k)) - 1} {
			if k == 10 {
				v = ^uint64(0)
			}
			b := AppendUint([]byte{0xaa}, v)
			got, n := ConsumeUint(b[1:])
			if got != v || n != len(b)-1 || b[0] != 0xaa {
				t.Fatalf("AppendUint(%d) = % x, reads back %d in %d bytes", v, b, got, n)
			}
		}
	}
}
