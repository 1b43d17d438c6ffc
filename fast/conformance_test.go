package fast

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sharedDir finds ../shared beside the repository (CI clones the repository with shared/
// next to it). FASTFEED_SHARED overrides. A missing directory fails the test: the
// conformance material is required, never skipped.
func sharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("FASTFEED_SHARED"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			s := filepath.Join(dir, "..", "shared")
			if _, err := os.Stat(filepath.Join(s, "conformance")); err != nil {
				t.Fatalf("conformance material not found at %s (set FASTFEED_SHARED): %v", s, err)
			}
			return s
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

type vector struct {
	line     int
	wire     []byte
	template string
	value    string // as in the file: "uint32 7", `asciistring "CME"`, "decimal exponent=2 mantissa=1", "ABSENT"
}

type vectorCase struct {
	name    string
	vectors []vector
}

func readVectors(t *testing.T, path string) []vectorCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []vectorCase
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		switch {
		case strings.TrimSpace(text) == "":
		case strings.HasPrefix(text, "CASE "):
			cases = append(cases, vectorCase{name: strings.TrimPrefix(text, "CASE ")})
		default:
			parts := strings.Split(strings.TrimSpace(text), "\t")
			if len(parts) != 3 || len(cases) == 0 {
				t.Fatalf("%s:%d: malformed vector line %q", path, line, text)
			}
			wire, err := hex.DecodeString(strings.ReplaceAll(parts[0], " ", ""))
			if err != nil {
				t.Fatalf("%s:%d: %v", path, line, err)
			}
			c := &cases[len(cases)-1]
			c.vectors = append(c.vectors, vector{line: line, wire: wire, template: parts[1], value: parts[2]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return cases
}

// describe renders field "Value" of a message in the vector file's notation.
func describe(m *Message) string {
	g := m.Root()
	i := m.Template.FieldIndex("Value")
	if i < 0 || !g.Present(i) {
		return "ABSENT"
	}
	f := g.Fields()[i]
	switch f.Type {
	case TypeUint32, TypeUint64:
		return "uint32 " + strconv.FormatUint(g.Uint(i), 10)
	case TypeInt32, TypeInt64:
		return "int32 " + strconv.FormatInt(g.Int(i), 10)
	case TypeDecimal:
		mant, exp := g.Decimal(i)
		return "decimal exponent=" + strconv.Itoa(int(exp)) + " mantissa=" + strconv.FormatInt(mant, 10)
	case TypeASCII, TypeUnicode:
		return "asciistring " + strconv.Quote(g.String(i))
	}
	return "unsupported " + f.Type.String()
}

// build fills m from the vector file's notation.
func build(t *testing.T, ts *Templates, name, value string, m *Message) {
	t.Helper()
	tmpl := ts.ByName(name)
	if tmpl == nil {
		t.Fatalf("template %q not found", name)
	}
	m.Reset(tmpl)
	g := m.Root()
	i := tmpl.FieldIndex("Value")
	kind, arg, _ := strings.Cut(value, " ")
	switch kind {
	case "ABSENT":
	case "uint32":
		v, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		g.SetUint(i, v)
	case "int32":
		v, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		g.SetInt(i, v)
	case "asciistring":
		s, err := strconv.Unquote(arg)
		if err != nil {
			t.Fatal(err)
		}
		g.SetString(i, s)
	case "decimal":
		var exp, mant int64
		for _, kv := range strings.Fields(arg) {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			switch k {
			case "exponent":
				exp = n
			case "mantissa":
				mant = n
			}
		}
		g.SetDecimal(i, mant, int32(exp))
	default:
		t.Fatalf("unknown value kind %q", kind)
	}
}

// TestSpecVectors decodes every case of the FAST specification's examples and re-encodes
// each message to the same bytes, one decoder and one encoder per case.
func TestSpecVectors(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "conformance", "fast-spec")
	for _, set := range []struct{ templates, vectors string }{
		{"spec_templates.xml", "spec_vectors.txt"},
		{"spec2_templates.xml", "spec2_vectors.txt"},
	} {
		ts, err := LoadFile(filepath.Join(dir, set.templates))
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, c := range readVectors(t, filepath.Join(dir, set.vectors)) {
			t.Run(set.vectors+"/"+c.name, func(t *testing.T) {
				dec, enc := NewDecoder(ts), NewEncoder(ts)
				var got, want Message
				for _, v := range c.vectors {
					total++
					n, err := dec.Decode(v.wire, &got)
					if err != nil {
						t.Fatalf("line %d: decode % x: %v", v.line, v.wire, err)
					}
					if n != len(v.wire) {
						t.Errorf("line %d: decode used %d of %d bytes", v.line, n, len(v.wire))
					}
					if got.Template.Name != v.template {
						t.Errorf("line %d: template %q, want %q", v.line, got.Template.Name, v.template)
					}
					if d := describe(&got); d != v.value {
						t.Errorf("line %d: decoded %s, want %s", v.line, d, v.value)
					}
					build(t, ts, v.template, v.value, &want)
					out, err := enc.Encode(nil, &want)
					if err != nil {
						t.Fatalf("line %d: encode %s: %v", v.line, v.value, err)
					}
					if !bytes.Equal(out, v.wire) {
						t.Errorf("line %d: encoded % x, want % x", v.line, out, v.wire)
					}
				}
			})
		}
		if total == 0 {
			t.Fatalf("%s: no vectors ran", set.vectors)
		}
	}
}
