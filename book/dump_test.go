package book

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenBooks returns books covering the dump format: the line of DESIGN.md,
// an MBO book, negative prices, size exponents, an empty book and a symbol
// that needs escaping.
func goldenBooks(t testing.TB) []Named {
	sber := mustMBP(t, Config{PriceExp: -2})
	sber.Apply(Update{Action: ActionNew, Type: EntryBid, Price: 10125, Size: 300, Orders: 3})
	sber.Apply(Update{Action: ActionNew, Type: EntryOffer, Price: 10130, Size: 50, Orders: 1})
	sber.SetRptSeq(812)

	gazp := mustMBO(t, Config{PriceExp: -1, SizeExp: 2})
	gazp.Apply(newOrder("1", EntryBid, 1505, 3))
	gazp.Apply(newOrder("2", EntryBid, 1505, 4))
	gazp.Apply(newOrder("3", EntryBid, 1500, 1))
	gazp.SetRptSeq(3)
	gazp.SetStale(true)

	spread := mustMBP(t, Config{PriceExp: -4, SizeExp: -3})
	spread.Replace([]Level{lv(-5000, 1500, 2), lv(-12345, 1, 1)}, []Level{lv(0, 100000, 0), lv(-4000, 20, 1)})
	spread.SetRptSeq(1 << 40)

	empty := mustMBP(t, Config{})
	return []Named{
		{"SBER", sber},
		{"GAZP", gazp},
		{"SI-12.25", spread},
		{"Z\"q\\\n\u00e9", empty},
	}
}

func TestWriteDumpGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteDump(&buf, goldenBooks(t)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "dump.golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("WriteDump:\n%s\nwant (%s):\n%s", got, path, want)
	}
	// The line of DESIGN.md, verbatim.
	const design = `{"symbol":"SBER","rptseq":812,"stale":false,"bids":[["101.25","300",3]],"asks":[["101.3","50",1]]}` + "\n"
	if !strings.Contains(buf.String(), design) {
		t.Errorf("dump lacks the DESIGN.md line %s", design)
	}
	// Every line is valid JSON.
	for i, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("line %d is not valid JSON: %s", i+1, line)
		}
	}
}

func TestReadDumpRoundTrip(t *testing.T) {
	books := goldenBooks(t)
	var buf bytes.Buffer
	if err := WriteDump(&buf, books); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	d, err := ReadDump(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Dump{
		DumpOf("GAZP", books[1].Book), DumpOf("SBER", books[0].Book),
		DumpOf("SI-12.25", books[2].Book), DumpOf("Z\"q\\\n\u00e9", books[3].Book),
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("ReadDump = %+v\nwant %+v", d, want)
	}
	if diff := DiffDumps(d, want); diff != "" {
		t.Errorf("DiffDumps of equal dumps = %q", diff)
	}
	if g, ok := d.Lookup("GAZP"); !ok || !g.Stale || g.RptSeq != 3 ||
		!reflect.DeepEqual(g.Bids, []DumpLevel{{"150.5", "700", 2}, {"150", "100", 1}}) || len(g.Asks) != 0 {
		t.Errorf("Lookup(GAZP) = %+v, %v", g, ok)
	}
	if _, ok := d.Lookup("NONE"); ok {
		t.Error("Lookup(NONE) found a book")
	}
	// WriteTo writes the same bytes as WriteDump.
	var again bytes.Buffer
	n, err := d.WriteTo(&again)
	if err != nil || n != int64(len(text)) || again.String() != text {
		t.Errorf("Dump.WriteTo = %d, %v:\n%s\nwant:\n%s", n, err, again.String(), text)
	}
	// AppendDumpLine writes one line of it.
	if line := string(AppendDumpLine(nil, "SBER", books[0].Book)); !strings.Contains(text, line) || !strings.HasSuffix(line, "}\n") {
		t.Errorf("AppendDumpLine = %q", line)
	}
	// Spaces between tokens, as other JSON writers put them, are accepted.
	spaced := `{"symbol": "SBER", "rptseq": 812, "stale": false, "bids": [["101.25", "300", 3]], "asks": [ ["101.3","50",1] ]}` + "\r\n"
	d2, err := ReadDump(strings.NewReader(spaced))
	if err != nil {
		t.Fatal(err)
	}
	if diff := DiffDumps(d2, Dump{DumpOf("SBER", books[0].Book)}); diff != "" {
		t.Errorf("spaced line: %s", diff)
	}
	// An empty dump is valid.
	if d, err := ReadDump(strings.NewReader("")); err != nil || len(d) != 0 {
		t.Errorf("ReadDump(empty) = %v, %v", d, err)
	}
}

func TestWriteDumpErrors(t *testing.T) {
	b := mustMBP(t, Config{})
	if err := WriteDump(&bytes.Buffer{}, []Named{{"A", b}, {"A", b}}); err == nil {
		t.Error("WriteDump with a duplicate symbol succeeded")
	}
	if err := WriteDump(&bytes.Buffer{}, []Named{{"", b}}); err == nil {
		t.Error("WriteDump with an empty symbol succeeded")
	}
	if err := WriteDump(&bytes.Buffer{}, []Named{{"A", nil}}); err == nil {
		t.Error("WriteDump with a nil book succeeded")
	}
	w := failWriter{}
	if err := WriteDump(w, []Named{{"A", b}}); !errors.Is(err, errWrite) {
		t.Errorf("WriteDump to a failing writer = %v", err)
	}
	if _, err := (Dump{{Symbol: "A"}}).WriteTo(w); !errors.Is(err, errWrite) {
		t.Errorf("Dump.WriteTo to a failing writer = %v", err)
	}
}

var errWrite = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestReadDumpRejects(t *testing.T) {
	const ok = `{"symbol":"A","rptseq":1,"stale":false,"bids":[["2","1",1]],"asks":[["3","1",1]]}`
	tests := []struct {
		name, line, wantErr string
	}{
		{"not JSON", `hello`, "not a JSON object"},
		{"array", `[1]`, "not a JSON object"},
		{"truncated", `{"symbol":"A","rptseq":1`, ""},
		{"trailing data", ok + ` {}`, "data after"},
		{"trailing garbage", ok + `x`, ""},
		{"empty line", ``, "not a JSON object"},
		{"unknown key", `{"symbol":"B","rptseq":1,"stale":false,"bids":[],"asks":[],"x":1}`, `unknown key "x"`},
		{"key in other case", `{"Symbol":"B","rptseq":1,"stale":false,"bids":[],"asks":[]}`, `unknown key "Symbol"`},
		{"duplicate key", `{"symbol":"B","symbol":"C","rptseq":1,"stale":false,"bids":[],"asks":[]}`, `"symbol" given twice`},
		{"missing symbol", `{"rptseq":1,"stale":false,"bids":[],"asks":[]}`, `missing "symbol"`},
		{"missing rptseq", `{"symbol":"B","stale":false,"bids":[],"asks":[]}`, `missing "rptseq"`},
		{"missing stale", `{"symbol":"B","rptseq":1,"bids":[],"asks":[]}`, `missing "stale"`},
		{"missing bids", `{"symbol":"B","rptseq":1,"stale":false,"asks":[]}`, `missing "bids"`},
		{"missing asks", `{"symbol":"B","rptseq":1,"stale":false,"bids":[]}`, `missing "asks"`},
		{"null asks", `{"symbol":"B","rptseq":1,"stale":false,"bids":[],"asks":null}`, `"asks" is null`},
		{"null rptseq", `{"symbol":"B","rptseq":null,"stale":false,"bids":[],"asks":[]}`, `"rptseq" is null`},
		{"empty symbol", `{"symbol":"","rptseq":1,"stale":false,"bids":[],"asks":[]}`, "empty"},
		{"numeric symbol", `{"symbol":5,"rptseq":1,"stale":false,"bids":[],"asks":[]}`, `"symbol"`},
		{"negative rptseq", `{"symbol":"B","rptseq":-1,"stale":false,"bids":[],"asks":[]}`, "negative"},
		{"fractional rptseq", `{"symbol":"B","rptseq":1.5,"stale":false,"bids":[],"asks":[]}`, `"rptseq"`},
		{"string stale", `{"symbol":"B","rptseq":1,"stale":"false","bids":[],"asks":[]}`, `"stale"`},
		{"bids not array", `{"symbol":"B","rptseq":1,"stale":false,"bids":{},"asks":[]}`, `"bids"`},
		{"level of two", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["1","2"]],"asks":[]}`, "bids[0]: level"},
		{"level of four", `{"symbol":"B","rptseq":1,"stale":false,"bids":[],"asks":[["1","2",3,4]]}`, "asks[0]: level"},
		{"numeric price", `{"symbol":"B","rptseq":1,"stale":false,"bids":[[1.5,"2",3]],"asks":[]}`, "bids[0]: price"},
		{"non-canonical price", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["1.50","2",3]],"asks":[]}`, "bids[0]: price"},
		{"minus zero price", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["-0","2",3]],"asks":[]}`, "bids[0]: price"},
		{"exponent price", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["1e2","2",3]],"asks":[]}`, "bids[0]: price"},
		{"non-canonical size", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["1","02",3]],"asks":[]}`, "bids[0]: size"},
		{"string orders", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["1","2","3"]],"asks":[]}`, "bids[0]: orders"},
		{"negative orders", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["1","2",-3]],"asks":[]}`, "bids[0]: orders"},
		{"null orders", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["1","2",null]],"asks":[]}`, "null"},
		{"bids ascending", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["1","2",3],["1.5","2",3]],"asks":[]}`, "bids[1]: price 1.5 after 1"},
		{"bids repeated", `{"symbol":"B","rptseq":1,"stale":false,"bids":[["1","2",3],["1","2",3]],"asks":[]}`, "strictly descending"},
		{"asks descending", `{"symbol":"B","rptseq":1,"stale":false,"bids":[],"asks":[["-1","2",3],["-1.5","2",3]]}`, "asks[1]: price -1.5 after -1"},
		{"symbol out of order", `{"symbol":"0","rptseq":1,"stale":false,"bids":[],"asks":[]}`, `symbol "0" not after "A"`},
		{"symbol repeated", ok, `symbol "A" not after "A"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bad line is line 2, after a good one.
			_, err := ReadDump(strings.NewReader(ok + "\n" + tt.line + "\n" + ok + "\n"))
			if err == nil {
				t.Fatalf("ReadDump accepted %s", tt.line)
			}
			if !strings.Contains(err.Error(), "line 2:") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want line 2 and %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadDumpLongLine(t *testing.T) {
	long := `{"symbol":"` + strings.Repeat("A", MaxDumpLine) + `"}`
	_, err := ReadDump(strings.NewReader("\n" + long))
	if err == nil || !strings.Contains(err.Error(), "line 1:") {
		t.Errorf("first line empty: %v", err)
	}
	_, err = ReadDump(strings.NewReader(`{"symbol":"A","rptseq":1,"stale":false,"bids":[],"asks":[]}` + "\n" + long))
	if err == nil || !strings.Contains(err.Error(), "line 2: longer than") {
		t.Errorf("long line: %v", err)
	}
	_, err = ReadDump(iotestErrReader{})
	if !errors.Is(err, errWrite) {
		t.Errorf("read error: %v", err)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errWrite }

func TestDiffDumps(t *testing.T) {
	base := Dump{
		{Symbol: "A", RptSeq: 1, Bids: []DumpLevel{{"10", "1", 1}}},
		{Symbol: "B", RptSeq: 2, Bids: []DumpLevel{{"10", "1", 1}, {"9", "2", 2}}, Asks: []DumpLevel{{"11", "1", 1}}},
		{Symbol: "C", RptSeq: 3},
	}
	clone := func() Dump {
		var d Dump
		for _, b := range base {
			b.Bids = append([]DumpLevel(nil), b.Bids...)
			b.Asks = append([]DumpLevel(nil), b.Asks...)
			d = append(d, b)
		}
		return d
	}
	tests := []struct {
		name   string
		change func(d Dump) Dump
		want   []string // substrings, in order
	}{
		{"equal", func(d Dump) Dump { return d }, nil},
		{"rptseq", func(d Dump) Dump { d[1].RptSeq = 7; return d }, []string{"1 of 3 symbols differ", "\nB: rptseq: a 2, b 7"}},
		{"stale", func(d Dump) Dump { d[2].Stale = true; return d }, []string{"C: stale: a false, b true"}},
		{"level size", func(d Dump) Dump { d[1].Bids[1].Size = "3"; return d },
			[]string{`B: bids[1] (0 = best): a ["9","2",2], b ["9","3",2]`}},
		{"missing level", func(d Dump) Dump { d[1].Bids = d[1].Bids[:1]; return d },
			[]string{`B: bids[1] (0 = best): a has 2 levels, b has 1; a ["9","2",2]`}},
		{"extra level", func(d Dump) Dump { d[1].Asks = append(d[1].Asks, DumpLevel{"12", "1", 1}); return d },
			[]string{`B: asks[1] (0 = best): a has 1 levels, b has 2; b ["12","1",1]`}},
		{"only in a", func(d Dump) Dump { return d[:2] }, []string{"1 of 3 symbols differ (a: 3 books, b: 2 books)", "C: only in a"}},
		{"only in b", func(d Dump) Dump { return append(d, DumpBook{Symbol: "D"}) }, []string{"D: only in b"}},
		{"several", func(d Dump) Dump { d[0].RptSeq = 0; d[2].RptSeq = 0; return d }, []string{"2 of 3", "\nA: rptseq", "\nC: rptseq"}},
		{"twice", func(d Dump) Dump { return append(d, d[0]) }, []string{"0 of 3 symbols differ (a: 3 books, b: 4 books); a symbol appears twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DiffDumps(base, tt.change(clone()))
			if tt.want == nil {
				if got != "" {
					t.Errorf("DiffDumps = %q, want none", got)
				}
				return
			}
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("DiffDumps =\n%s\nwant it to contain, in order, %q", got, tt.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
	// Many differences are capped.
	var a, b Dump
	for i := range 25 {
		s := string(rune('A' + i))
		a = append(a, DumpBook{Symbol: s, RptSeq: 1})
		b = append(b, DumpBook{Symbol: s, RptSeq: 2})
	}
	got := DiffDumps(a, b)
	if n := strings.Count(got, "\n"); n != maxDiffs+1 || !strings.HasSuffix(got, "... and 15 more") {
		t.Errorf("DiffDumps of 25 differences:\n%s", got)
	}
}

// FuzzReadDump checks that ReadDump never panics and that what it accepts
// writes back to a dump it reads the same.
func FuzzReadDump(f *testing.F) {
	var buf bytes.Buffer
	WriteDump(&buf, goldenBooks(f))
	f.Add(buf.String())
	f.Add(`{"symbol":"SBER","rptseq":812,"stale":false,"bids":[["101.25","300",3]],"asks":[["101.3","50",1]]}`)
	f.Add(`{"symbol": "A", "rptseq": 0, "stale": true, "bids": [], "asks": [["-0.5", "0", 0]]}` + "\n")
	f.Add(`{"symbol":"A","rptseq":1,"stale":false,"bids":[["1","2",3],["1","2",3]],"asks":[]}`)
	f.Add("{\"symbol\":\"\\u00e9\\n\",\"rptseq\":1,\"stale\":false,\"bids\":[],\"asks\":[]}\n{}")
	f.Add(`[["1","2",3]]`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ReadDump(strings.NewReader(s))
		if err != nil {
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if _, err := d.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		d2, err := ReadDump(&out)
		if err != nil {
			t.Fatalf("rewritten dump rejected: %v\n%s", err, out.String())
		}
		if !reflect.DeepEqual(d, d2) && DiffDumps(d, d2) != "" {
			t.Fatalf("round trip changed the dump: %s", DiffDumps(d, d2))
		}
	})
}

// TestDumpDepth: depth 0 is DumpOf; a depth cuts each side to its best levels, formatted
// as DumpOf formats them.
func TestDumpDepth(t *testing.T) {
	b, err := NewMBP(Config{PriceExp: -2})
	if err != nil {
		t.Fatal(err)
	}
	for i, px := range []int64{10125, 10120, 10110} {
		if err := b.Apply(Update{Action: ActionNew, Type: EntryBid, Price: px, Size: int64(100 * (i + 1)), Orders: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Apply(Update{Action: ActionNew, Type: EntryOffer, Price: 10130, Size: 50, Orders: 2}); err != nil {
		t.Fatal(err)
	}
	full := DumpOf("SBER", b)
	if d := DumpDepth("SBER", b, 0); len(d.Bids) != 3 || d.Bids[2] != full.Bids[2] {
		t.Errorf("depth 0: %+v, want %+v", d, full)
	}
	d := DumpDepth("SBER", b, 2)
	if len(d.Bids) != 2 || d.Bids[0] != full.Bids[0] || d.Bids[1] != full.Bids[1] || len(d.Asks) != 1 || d.Asks[0] != full.Asks[0] {
		t.Errorf("depth 2: %+v, want the top two of %+v", d, full)
	}
}
