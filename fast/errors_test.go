package fast

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

const errorTemplates = `<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1">
  <template name="U32" id="1"><uInt32 name="V" id="1"/></template>
  <template name="I32" id="2"><int32 name="V" id="1"/></template>
  <template name="Str" id="3"><string name="V" id="1"/></template>
  <template name="Dec" id="4"><decimal name="V" id="1"/></template>
  <template name="Copy" id="5"><uInt32 name="V" id="1"><copy/></uInt32></template>
  <template name="Delta" id="6"><string name="V" id="1"><delta/></string></template>
  <template name="Seq" id="7"><sequence name="S"><uInt32 name="A" id="1"/></sequence></template>
  <template name="OptCopy" id="8"><uInt32 name="V" id="1" presence="optional"><copy/></uInt32></template>
  <template name="Uni" id="9"><string name="V" id="1" charset="unicode"/></template>
  <template name="U64" id="10"><uInt64 name="V" id="1"/></template>
  <template name="I64" id="11"><int64 name="V" id="1"/></template>
  <template name="Bytes" id="12"><byteVector name="V" id="1"/></template>
</templates>`

func TestDecodeErrors(t *testing.T) {
	ts, err := Load(strings.NewReader(errorTemplates))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		wire   []byte
		code   Code
		offset int
	}{
		{"empty input", nil, Truncated, 0},
		{"pmap without stop bit", []byte{0x40}, Truncated, 0},
		{"unknown template", []byte{0xc0, 0xe3}, D9, 1},
		{"no template id after reset", []byte{0x80}, D5, 1},
		{"uInt32 overflow", []byte{0xc0, 0x81, 0x10, 0x00, 0x00, 0x00, 0x80}, D2, 2},
		{"int32 overflow", []byte{0xc0, 0x82, 0x08, 0x00, 0x00, 0x00, 0x80}, D2, 2},
		{"uInt64 over 64 bits", []byte{0xc0, 0x8a, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, D2, 2},
		{"int64 over 64 bits", []byte{0xc0, 0x8b, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, D2, 2},
		{"overlong uInt32", []byte{0xc0, 0x81, 0x00, 0x81}, R6, 2},
		{"overlong positive int32", []byte{0xc0, 0x82, 0x00, 0x01, 0x81}, R6, 2},
		{"overlong negative int32", []byte{0xc0, 0x82, 0x7f, 0x7f, 0xff}, R6, 2},
		{"overlong pmap", []byte{0xc0 &^ 0x80, 0x80, 0x81, 0x81}, R7, 0},
		{"pmap with unused set bit", []byte{0xe0, 0x81, 0x81}, R8, 3},
		{"overlong string", []byte{0xc0, 0x83, 0x00, 0x41, 0xc2}, R9, 2},
		{"decimal exponent 64", []byte{0xc0, 0x84, 0x00, 0xc0, 0x81}, R1, 2},
		{"decimal exponent -64", []byte{0xc0, 0x84, 0xc0, 0x81}, R1, 2},
		{"copy of undefined mandatory", []byte{0xc0, 0x85}, D5, 2},
		{"delta subtraction beyond base", []byte{0xc0, 0x86, 0x83, 0xc1}, D7, 3},
		{"truncated integer", []byte{0xc0, 0x81, 0x01}, Truncated, 2},
		{"truncated string", []byte{0xc0, 0x83, 0x41, 0x42}, Truncated, 2},
		{"sequence longer than input", []byte{0xc0, 0x87, 0xff, 0x81}, Truncated, 3},
		{"invalid UTF-8", []byte{0xc0, 0x89, 0x82, 0xc3, 0x28}, R2, 5},
		{"byte vector longer than input", []byte{0xc0, 0x8c, 0x8a, 0x01}, Truncated, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			_, err := NewDecoder(ts).Decode(tt.wire, &m)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Decode(% x) = %v, want a *Error %s", tt.wire, err, tt.code)
			}
			if fe.Code != tt.code || fe.Offset != tt.offset {
				t.Errorf("Decode(% x): %v; want code %s at offset %d", tt.wire, err, tt.code, tt.offset)
			}
			if tt.code == Truncated && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("truncation does not unwrap to io.ErrUnexpectedEOF")
			}
			if !strings.Contains(err.Error(), string(tt.code)) {
				t.Errorf("message %q does not name the code", err)
			}
		})
	}
}

func TestNullableExtremes(t *testing.T) {
	tests := []struct {
		wire []byte
		want uint64
		null bool
	}{
		{[]byte{0x80}, 0, true},
		{[]byte{0x81}, 0, false},
		{[]byte{0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, 1<<64 - 1, false},
	}
	for _, tt := range tests {
		v, null, n := ConsumeUintNullable(tt.wire)
		if n != len(tt.wire) || v != tt.want || null != tt.null {
			t.Errorf("ConsumeUintNullable(% x) = %d, %v, %d", tt.wire, v, null, n)
		}
		if !tt.null {
			if got := AppendUintNullable(nil, tt.want); string(got) != string(tt.wire) {
				t.Errorf("AppendUintNullable(%d) = % x, want % x", tt.want, got, tt.wire)
			}
		}
	}
	// int64 extremes, plain and nullable, round trip through the primitives.
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 1<<62 - 1, 1 << 62, -1 << 62, 1<<63 - 1, -1 << 63} {
		b := AppendInt(nil, v)
		got, n := ConsumeInt(b)
		if n != len(b) || got != v {
			t.Errorf("int %d: % x decoded as %d (%d bytes)", v, b, got, n)
		}
		b = AppendIntNullable(nil, v)
		got, null, n := ConsumeIntNullable(b)
		if n != len(b) || got != v || null {
			t.Errorf("nullable int %d: % x decoded as %d null=%v (%d bytes)", v, b, got, null, n)
		}
	}
	for _, v := range []uint64{0, 127, 128, 1<<63 - 1, 1 << 63, 1<<64 - 1} {
		b := AppendUint(nil, v)
		got, n := ConsumeUint(b)
		if n != len(b) || got != v {
			t.Errorf("uint %d: % x decoded as %d (%d bytes)", v, b, got, n)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	const head = `<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1">` + "\n"
	tests := []struct {
		name, xml string
		code      Code
		line      int
	}{
		{"unknown element", head + `<template name="a" id="1"><uInt16 name="x" id="1"/></template></templates>`, S1, 2},
		{"unknown attribute", head + "<template name=\"a\" id=\"1\">\n<uInt32 name=\"x\" colour=\"red\"/></template></templates>", S1, 3},
		{"increment on string", head + `<template name="a" id="1"><string name="x"><increment/></string></template></templates>`, S2, 2},
		{"tail on integer", head + `<template name="a" id="1"><uInt32 name="x"><tail/></uInt32></template></templates>`, S2, 2},
		{"bad initial value", head + `<template name="a" id="1"><uInt32 name="x"><copy value="-1"/></uInt32></template></templates>`, S3, 2},
		{"constant without value", head + `<template name="a" id="1"><uInt32 name="x"><constant/></uInt32></template></templates>`, S4, 2},
		{"mandatory default without value", head + `<template name="a" id="1"><uInt32 name="x"><default/></uInt32></template></templates>`, S5, 2},
		{"unknown static reference", head + `<template name="a" id="1"><templateRef name="b"/></template></templates>`, D8, 2},
		{"reference cycle", head + `<template name="a" id="1"><templateRef name="b"/></template>` + "\n" + `<template name="b" id="2"><templateRef name="a"/></template></templates>`, S1, 3},
		{"duplicate id", head + `<template name="a" id="1"/>` + "\n" + `<template name="b" id="1"/></templates>`, S1, 3},
		{"not XML", "<templates", S1, 1},
		{"wrong root", `<foo/>`, S1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.xml))
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Load = %v, want a *Error", err)
			}
			if fe.Code != tt.code || fe.Line != tt.line {
				t.Errorf("Load: %v; want %s at line %d", err, tt.code, tt.line)
			}
		})
	}
}

// TestStaticTemplateRef checks that a static reference expands in place, sharing the
// referencing template's presence map, and that dynamic references nest a message.
func TestTemplateRefs(t *testing.T) {
	ts, err := Load(strings.NewReader(`<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1">
  <template name="Header"><uInt32 name="Seq" id="34"><increment/></uInt32></template>
  <template name="Msg" id="1"><templateRef name="Header"/><string name="Sym" id="55"><copy/></string><templateRef/></template>
  <template name="Inner" id="2"><uInt32 name="Qty" id="38"/></template>
</templates>`))
	if err != nil {
		t.Fatal(err)
	}
	msg := ts.ByName("Msg")
	if got := len(msg.Fields); got != 3 || msg.Fields[0].Name != "Seq" {
		t.Fatalf("static reference not expanded: %d fields", got)
	}
	var m Message
	m.Reset(msg)
	g := m.Root()
	g.SetUint(0, 7)
	g.SetString(1, "SBER")
	g.SetRef(2, ts.ByName("Inner")).SetUint(0, 100)
	wire, err := NewEncoder(ts).Encode(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	// pmap: TID, Seq, Sym set (0xf0); id 1; 7; "SBER"; inner pmap with TID (0xc0); id 2; 100.
	want := []byte{0xf0, 0x81, 0x87, 'S', 'B', 'E', 'R' | 0x80, 0xc0, 0x82, 0xe4}
	if string(wire) != string(want) {
		t.Fatalf("encoded % x, want % x", wire, want)
	}
	var out Message
	if _, err := NewDecoder(ts).Decode(wire, &out); err != nil {
		t.Fatal(err)
	}
	if d := equalGroups(m.Root(), out.Root(), "Msg"); d != "" {
		t.Fatal(d)
	}
	inner, ok := out.Root().Ref(2)
	if !ok || inner.Template().Name != "Inner" || inner.Uint(0) != 100 {
		t.Fatalf("dynamic reference decoded as %+v", inner)
	}
}

// TestResetTemplate checks that a template marked scp:reset resets the dictionaries.
func TestResetTemplate(t *testing.T) {
	ts, err := Load(strings.NewReader(`<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1" xmlns:scp="http://www.fixprotocol.org/ns/fast/scp/1.1">
  <template name="Reset" id="120" scp:reset="yes"/>
  <template name="M" id="1"><uInt32 name="V" id="1"><copy/></uInt32></template>
</templates>`))
	if err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(ts)
	var m Message
	for i, step := range []struct {
		wire []byte
		code Code
	}{
		{[]byte{0xe0, 0x81, 0x85}, ""}, // M with V=5
		{[]byte{0x80}, ""},             // M, V copied
		{[]byte{0xc0, 0xf8}, ""},       // Reset (id 120)
		{[]byte{0xc0, 0x81}, D5},       // M without V: the dictionary was reset
	} {
		_, err := dec.Decode(step.wire, &m)
		if CodeOf(err) != step.code {
			t.Fatalf("step %d: %v, want code %q", i, err, step.code)
		}
	}
}

// TestLongPresenceMap round-trips a template whose presence map needs more than 63 bits,
// which the encoder writes byte by byte instead of through its bit register.
func TestLongPresenceMap(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1"><template name="Wide" id="1">`)
	for i := 0; i < 70; i++ {
		fmt.Fprintf(&b, `<uInt32 name="F%d" id="%d" presence="optional"><copy/></uInt32>`, i, i+1)
	}
	b.WriteString(`</template></templates>`)
	ts, err := Load(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	enc, dec := NewEncoder(ts), NewDecoder(ts)
	var in, out Message
	for round := 0; round < 3; round++ {
		in.Reset(ts.ByID(1))
		for i := 0; i < 70; i++ {
			if (i+round)%3 != 0 {
				in.Root().SetUint(i, uint64(i*round))
			}
		}
		wire, err := enc.Encode(nil, &in)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := dec.Decode(wire, &out); err != nil || n != len(wire) {
			t.Fatalf("round %d: decode %d of %d bytes: %v", round, n, len(wire), err)
		}
		if d := equalGroups(in.Root(), out.Root(), "Wide"); d != "" {
			t.Fatalf("round %d: %s", round, d)
		}
	}
}
