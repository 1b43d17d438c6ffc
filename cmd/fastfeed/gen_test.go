package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGen generates the codec of fixtures/templates.xml and requires the committed one
// (fast/codecs/ffcodec) to be the same bytes: the committed code is current.
func TestGen(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ffcodec.go")
	if _, errOut, code := runCLI(t, "gen", "-t", "../../fixtures/templates.xml", "-pkg", "ffcodec", "-o", out); code != 0 {
		t.Fatalf("gen: exit %d: %s", code, errOut)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../fast/codecs/ffcodec/ffcodec.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("fast/codecs/ffcodec is not what fastfeed gen makes of fixtures/templates.xml: run go generate ./fast/codecs")
	}
	if _, _, code := runCLI(t, "gen", "-t", "../../fixtures/templates.xml"); code != 2 {
		t.Errorf("gen without -pkg and -o: exit %d, want 2", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.xml")
	os.WriteFile(bad, []byte("<templates xmlns=\"http://www.fixprotocol.org/ns/fast/td/1.1\">\n<template name=\"a\" id=\"1\" colour=\"red\"/></templates>"), 0o644)
	if _, errOut, code := runCLI(t, "gen", "-t", bad, "-pkg", "x", "-o", out); code == 0 || !strings.Contains(errOut, "line 2") {
		t.Errorf("gen of a bad file: exit %d, %q", code, errOut)
	}
}

// TestDecodeGeneratedCodec checks that decode takes the compiled-in generated codec for a
// template file of the same content, says so in --summary, and prints exactly what the
// interpreter prints (a copy of the file with one more byte is not compiled in).
func TestDecodeGeneratedCodec(t *testing.T) {
	xml, err := os.ReadFile("../../fixtures/templates.xml")
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "templates.xml")
	if err := os.WriteFile(other, append(xml, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	const sample = "../../fixtures/sample.seq32"
	var s struct {
		Messages int
		Codec    string
	}
	for _, c := range []struct{ file, codec string }{{"../../fixtures/templates.xml", "generated"}, {other, "interpreted"}} {
		out, errOut, code := runCLI(t, "decode", "-t", c.file, "--framing", "seq32", "--summary", sample)
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Codec != c.codec || s.Messages != 6 {
			t.Errorf("%s: summary exit %d %q %s, want codec %s", c.file, code, out, errOut, c.codec)
		}
	}
	gen, _, code1 := runCLI(t, "decode", "-t", "../../fixtures/templates.xml", "--framing", "seq32", sample)
	in, _, code2 := runCLI(t, "decode", "-t", other, "--framing", "seq32", sample)
	if code1 != 0 || code2 != 0 || gen != in || strings.Count(gen, "\n") != 6 {
		t.Errorf("generated (exit %d) printed\n%s\ninterpreted (exit %d)\n%s", code1, gen, code2, in)
	}
}
