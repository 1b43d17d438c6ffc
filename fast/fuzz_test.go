package fast

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to decoders of fastfeed's templates and of MOEX ASTS.
// Decoding must never panic or hang, and every message that decodes must re-encode to bytes
// that decode to the same values.
func FuzzDecode(f *testing.F) {
	fixture, moex := fuzzTemplates(f)
	f.Add([]byte{0xc0, 0x81, 0x82, 0x39, 0x45, 0xa3})
	f.Add([]byte{0xc0, 0x00, 0x81})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ts := range []*Templates{fixture, moex} {
			dec, enc, check := NewDecoder(ts), NewEncoder(ts), NewDecoder(ts)
			var in, back Message
			var wire []byte
			for pos := 0; pos < len(data); {
				n, err := dec.Decode(data[pos:], &in)
				if err != nil {
					if CodeOf(err) == "" {
						t.Fatalf("error without a FAST code: %v", err)
					}
					break
				}
				if n <= 0 {
					t.Fatalf("decode used %d bytes without error", n)
				}
				pos += n
				wire, err = enc.Encode(wire[:0], &in)
				if err != nil {
					t.Fatalf("re-encode of a decoded %s: %v", in.Template.Name, err)
				}
				if _, err := check.Decode(wire, &back); err != nil {
					t.Fatalf("decode of re-encoded %s % x: %v", in.Template.Name, wire, err)
				}
				if d := equalGroups(in.Root(), back.Root(), in.Template.Name); d != "" {
					t.Fatalf("re-encoded message differs: %s", d)
				}
			}
		}
	})
}

// FuzzLoad feeds arbitrary XML to the template loader: it must return templates or an
// error, never panic.
func FuzzLoad(f *testing.F) {
	for _, path := range append(exchangeTemplatesForFuzz(f), filepath.Join("..", "fixtures", "templates.xml")) {
		b, err := os.ReadFile(path)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1"><template name="a" id="1"><templateRef name="a"/></template></templates>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := Load(bytes.NewReader(data))
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("error without a FAST code: %v", err)
			}
			return
		}
		// Whatever loaded must be usable: encode an empty-ish message of each template.
		for _, tmpl := range ts.List() {
			var m Message
			m.Reset(tmpl)
			_, _ = NewEncoder(ts).Encode(nil, &m)
		}
	})
}

func exchangeTemplatesForFuzz(f *testing.F) []string {
	files, err := filepath.Glob(filepath.Join(sharedDir(f), "conformance", "exchange-templates", "*.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("exchange templates not found: %v", err)
	}
	return files
}

// fuzzTemplates loads fastfeed's templates and MOEX ASTS's for the decoding fuzz targets,
// and seeds f with a message of each: the 5-entry incremental and the MOEX trades.
func fuzzTemplates(f *testing.F) (fixture, moex *Templates) {
	fixture = loadFixture(f)
	moex, err := LoadFile(filepath.Join(sharedDir(f), "conformance", "exchange-templates", "moex_asts_FIX50SP2-2017-Mar.xml"))
	if err != nil {
		f.Fatal(err)
	}
	var m Message
	incremental5(f, fixture, &m)
	seed, err := NewEncoder(fixture).Encode(nil, &m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	moexTrades(f, &m)
	if seed, err = NewEncoder(moex).Encode(nil, &m); err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	return fixture, moex
}
