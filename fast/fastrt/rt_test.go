package fastrt

import (
	"bytes"
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
