package fast

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResetAttribute checks the reset attribute of <template> (QuickFAST, mFAST): every
// dictionary entry resets before each message of that template, in the decoder and the
// encoder alike.
func TestResetAttribute(t *testing.T) {
	const head = `<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1">`
	for _, c := range []struct {
		value string
		reset bool
	}{{"Y", true}, {"yes", true}, {"true", true}, {"N", false}, {"no", false}, {"false", false}} {
		ts, err := Load(strings.NewReader(head + `<template name="M" id="1" reset="` + c.value + `"><uInt32 name="V"><copy/></uInt32></template></templates>`))
		if err != nil {
			t.Fatalf("reset=%q: %v", c.value, err)
		}
		if ts.ByID(1).ResetEach != c.reset {
			t.Errorf("reset=%q: ResetEach %v, want %v", c.value, ts.ByID(1).ResetEach, c.reset)
		}
	}
	_, err := Load(strings.NewReader(head + "\n\n" + `<template name="M" id="1" reset="maybe"/></templates>`))
	var fe *Error
	if CodeOf(err) != S1 || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "maybe") {
		t.Errorf("reset=maybe: %v, want S1 at line 3 naming the value", err)
	}
	_ = fe

	ts, err := Load(strings.NewReader(head + `
  <template name="R" id="1" reset="yes"><uInt32 name="V"><copy/></uInt32></template>
  <template name="C" id="2"><uInt32 name="V"><copy/></uInt32></template>
</templates>`))
	if err != nil {
		t.Fatal(err)
	}
	// Decoding: in R, V absent after V=5 is an error (the entry was reset); in C it is 5.
	for _, c := range []struct {
		wire [][]byte
		code Code
	}{
		{[][]byte{{0xe0, 0x81, 0x85}, {0xc0, 0x81}}, D5},       // R V=5, then R without V
		{[][]byte{{0xe0, 0x82, 0x85}, {0xc0, 0x82}}, ""},       // C V=5, then C copies it
		{[][]byte{{0xe0, 0x82, 0x85}, {0x80}}, ""},             // C, then C with the identifier copied too
		{[][]byte{{0xe0, 0x82, 0x85}, {0xc0, 0x81}}, D5},       // C V=5, then R: the global entry is reset
		{[][]byte{{0xe0, 0x81, 0x85}, {0xa0, 0x86}}, D5},       // R, then no identifier: it was reset with the rest
		{[][]byte{{0xe0, 0x81, 0x85}, {0xe0, 0x81, 0x86}}, ""}, // R twice with values
	} {
		dec := NewDecoder(ts)
		var m Message
		var err error
		for _, w := range c.wire {
			if _, err = dec.Decode(w, &m); err != nil {
				break
			}
		}
		if CodeOf(err) != c.code {
			t.Errorf("% x: %v, want code %q", c.wire, err, c.code)
		}
	}
	// Encoding: two equal R messages encode to the same bytes (nothing carried over).
	enc := NewEncoder(ts)
	var m Message
	m.Reset(ts.ByID(1))
	m.Root().SetUint(0, 5)
	a, err1 := enc.Encode(nil, &m)
	b, err2 := enc.Encode(nil, &m)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) || !bytes.Equal(a, []byte{0xe0, 0x81, 0x85}) {
		t.Errorf("R twice: % x, % x (%v, %v), want e0 81 85 both times", a, b, err1, err2)
	}
}

// TestExchangeFilesLoad loads every real exchange file of ../shared/conformance: the
// attributes they use beyond the FAST 1.1 schema (none today besides scp:reset) load.
func TestExchangeFilesLoad(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "conformance", "exchange-templates")
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("exchange templates: %v, %d files", err, len(files))
	}
	for _, f := range files {
		ts, err := LoadFile(f)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		data, _ := os.ReadFile(f)
		if len(ts.List()) == 0 || ts.SourceSHA256() == "" || len(data) == 0 {
			t.Errorf("%s: %d templates", filepath.Base(f), len(ts.List()))
		}
	}
}
