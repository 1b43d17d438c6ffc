package fastrt

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestBeginWraps checks that the message counter reports its wrap (the generated codec
// then forgets every Entry.Cur) and never returns to 0.
func TestBeginWraps(t *testing.T) {
	s := Dec{Msg: ^uint32(0) - 1}
	if s.Begin([]byte{1}) || s.Msg != ^uint32(0) {
		t.Fatalf("Msg %d before the wrap", s.Msg)
	}
	if !s.Begin([]byte{1}) || s.Msg != 1 {
		t.Fatalf("wrap not reported, Msg %d", s.Msg)
	}
}

// TestExtend checks that strings sliced from the window stay valid when it grows.
func TestExtend(t *testing.T) {
	in := bytes.Repeat([]byte("abcdefg\xe8"), 300) // strings "abcdefgh", the h with the stop bit
	var s Dec
	s.Begin(in)
	var got [][]byte
	for p := 0; p < len(in); p += 8 {
		got = append(got, s.ASCII(in, p, p+7))
	}
	for i, g := range got {
		if string(g) != "abcdefgh" {
			t.Fatalf("string %d is %q", i, g)
		}
	}
	if len(s.Win) != len(in) {
		t.Fatalf("window of %d bytes, input %d", len(s.Win), len(in))
	}
}

// TestDictReset checks the generations: a reset makes assigned and empty entries undefined,
// and a wrap is reported.
func TestDictReset(t *testing.T) {
	d := Dict{Gen: 2}
	var a, e Entry
	d.SetInt(&a, 1, 5, 0)
	d.SetEmpty(&e, 1)
	if d.state(&a) != assigned || d.state(&e) != empty {
		t.Fatal("states before the reset")
	}
	if d.Reset() || d.state(&a) != undefined || d.state(&e) != undefined {
		t.Fatal("states after the reset")
	}
	d.Gen = ^uint32(0) - 1
	if !d.Reset() || d.Gen != 2 {
		t.Fatalf("wrap: Gen %d", d.Gen)
	}
}

func TestWordParsers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200000 {
		var buf [8]byte
		for j := range buf {
			buf[j] = byte(r.Uint32())
			if r.IntN(3) > 0 {
				buf[j] &= 0x7f
			}
		}
		if i%7 == 0 {
			buf[0] = 0
		}
		if i%11 == 0 {
			buf[0] = 0x7f
		}
		w := binary.LittleEndian.Uint64(buf[:])
		ux, un := UintWord(w)
		wx, wn := Uint(buf[:], 0)
		if un != 0 && (un != wn || ux != wx) || un == 0 && wn != 0 && wn <= 8 {
			t.Fatalf("UintWord(% x) = %d, %d; Uint %d, %d", buf, ux, un, wx, wn)
		}
		sx, sn := IntWord(w)
		ix, in := Int(buf[:], 0)
		if sn != 0 && (sn != in || sx != ix) || sn == 0 && in != 0 && in <= 8 {
			t.Fatalf("IntWord(% x) = %d, %d; Int %d, %d", buf, sx, sn, ix, in)
		}
	}
}

// TestEqPutASCII checks the encoder's inlined string helpers against the plain forms:
// Eq against bytes.Equal, PutASCII against fast.AppendASCII (and its refusal of 8-bit
// bytes), for strings of every length up to 20 with 8-bit and NUL bytes.
func TestEqPutASCII(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alpha := []byte{0, 1, 'A', 'B', 0x7f, 0x80, 0xff}
	for range 20000 {
		a := make([]byte, r.IntN(21))
		for i := range a {
			a[i] = alpha[r.IntN(len(alpha))]
		}
		b := append([]byte(nil), a...)
		if len(b) > 0 && r.IntN(2) == 0 {
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
		}
		if r.IntN(8) == 0 {
			b = b[:r.IntN(len(b)+1)]
		}
		if got, want := Eq(a, b), bytes.Equal(a, b); got != want {
			t.Fatalf("Eq(%x, %x) = %v", a, b, got)
		}
		d := make([]byte, len(a))
		if CopyShort(d, a); !bytes.Equal(d, a) {
			t.Fatalf("CopyShort(%x) = %x", a, d)
		}
		if len(a) == 0 || a[0] == 0 {
			continue // PutASCII's precondition
		}
		dst := make([]byte, len(a))
		ok := PutASCII(dst, a)
		want, wantOK := AppendASCII(nil, a, r.IntN(2) == 0)
		if ok != wantOK || ok && !bytes.Equal(dst, want) {
			t.Fatalf("PutASCII(%x) = %x %v, AppendASCII %x %v", a, dst, ok, want, wantOK)
		}
	}
}
