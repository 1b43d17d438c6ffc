package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fastfeed/fast"
	"fastfeed/replay"
)

var update = flag.Bool("update", false, "rewrite golden files")

const templatesPath = "../../fixtures/templates.xml"

// sampleMessages builds one message of each of fastfeed's templates.
func sampleMessages(t *testing.T, ts *fast.Templates) []*fast.Message {
	t.Helper()
	var msgs []*fast.Message
	add := func(name string, fill func(g fast.Group, idx func(string) int)) {
		tmpl := ts.ByName(name)
		if tmpl == nil {
			t.Fatalf("no template %s", name)
		}
		m := &fast.Message{}
		m.Reset(tmpl)
		fill(m.Root(), func(f string) int {
			i := tmpl.FieldIndex(f)
			if i < 0 {
				t.Fatalf("%s has no field %s", name, f)
			}
			return i
		})
		msgs = append(msgs, m)
	}
	const sendingTime = 1795372800123456789
	add("SecurityDefinition", func(g fast.Group, i func(string) int) {
		g.SetUint(i("MsgSeqNum"), 1)
		g.SetUint(i("SendingTime"), sendingTime)
		g.SetUint(i("TotNumReports"), 1)
		g.SetString(i("Symbol"), "SBER")
		g.SetString(i("SecurityDesc"), "Сбербанк ао")
		g.SetDecimal(i("MinPriceIncrement"), 1, -2)
		g.SetInt(i("PriceExponent"), -2)
		g.SetInt(i("SizeExponent"), 0)
		g.SetUint(i("MDBookType"), 2)
		g.SetString(i("ApplID"), "G239.1.2.3:30001")
	})
	add("MDIncRefresh", func(g fast.Group, i func(string) int) {
		g.SetUint(i("MsgSeqNum"), 2)
		g.SetUint(i("SendingTime"), sendingTime+1000)
		seq := g.SetSeq(i("MDEntries"), 3)
		for j, e := range []struct {
			action uint64
			typ    string
			px     int64
			size   int64
		}{{0, "0", 28455, 1200}, {0, "1", 28470, 300}, {0, "2", 28460, 10}} {
			el := seq.Elem(j)
			el.SetUint(0, e.action)
			el.SetString(1, e.typ)
			el.SetString(2, "SBER")
			el.SetUint(3, uint64(j+1))
			el.SetDecimal(5, e.px, -2)
			el.SetDecimal(6, e.size, 0)
			if e.typ != "2" {
				el.SetUint(7, 1)
			} else {
				el.SetString(4, "T1001")
			}
		}
	})
	add("MDSnapshotFullRefresh", func(g fast.Group, i func(string) int) {
		g.SetUint(i("MsgSeqNum"), 0)
		g.SetUint(i("SendingTime"), sendingTime+2000)
		g.SetUint(i("LastMsgSeqNumProcessed"), 2)
		g.SetString(i("Symbol"), "SBER")
		g.SetUint(i("RptSeq"), 3)
		seq := g.SetSeq(i("MDEntries"), 2)
		seq.Elem(0).SetString(0, "0")
		seq.Elem(0).SetDecimal(2, 28455, -2)
		seq.Elem(0).SetDecimal(3, 1200, 0)
		seq.Elem(0).SetUint(4, 1)
		seq.Elem(1).SetString(0, "1")
		seq.Elem(1).SetDecimal(2, 28470, -2)
		seq.Elem(1).SetDecimal(3, 300, 0)
		seq.Elem(1).SetUint(4, 1)
	})
	add("SecurityStatus", func(g fast.Group, i func(string) int) {
		g.SetUint(i("MsgSeqNum"), 3)
		g.SetUint(i("SendingTime"), sendingTime+3000)
		g.SetString(i("Symbol"), "SBER")
		g.SetUint(i("SecurityTradingStatus"), 17)
	})
	add("Heartbeat", func(g fast.Group, i func(string) int) {
		g.SetUint(i("MsgSeqNum"), 3)
		g.SetUint(i("SendingTime"), sendingTime+4000)
		g.SetUint(i("LastMsgSeqNumProcessed"), 3)
	})
	add("SequenceReset", func(g fast.Group, i func(string) int) {
		g.SetUint(i("MsgSeqNum"), 1)
		g.SetUint(i("SendingTime"), sendingTime+5000)
		g.SetUint(i("NewSeqNo"), 1)
	})
	return msgs
}

// frame encodes msgs in one framing: stream (one encoder state), seq32 or len32 (reset
// per message).
func frame(t *testing.T, ts *fast.Templates, msgs []*fast.Message, kind string) []byte {
	t.Helper()
	enc := fast.NewEncoder(ts)
	var out []byte
	seqs := []uint32{1, 2, 2, 3, 3, 1} // the snapshot and heartbeat consume no sequence number
	for i, m := range msgs {
		var err error
		switch kind {
		case "stream":
			out, err = enc.Encode(out, m)
		case "seq32", "len32":
			enc.Reset()
			var body []byte
			body, err = enc.Encode(nil, m)
			word := seqs[i]
			if kind == "len32" {
				word = uint32(len(body))
			}
			out = binary.LittleEndian.AppendUint32(out, word)
			out = append(out, body...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// TestSampleFixture keeps fixtures/sample.seq32 equal to what the encoder produces for the
// sample messages, and the decode command's output for it equal to the golden JSON lines.
func TestSampleFixture(t *testing.T) {
	ts, err := fast.LoadFile(templatesPath)
	if err != nil {
		t.Fatal(err)
	}
	wire := frame(t, ts, sampleMessages(t, ts), "seq32")
	path := "../../fixtures/sample.seq32"
	if *update {
		if err := os.WriteFile(path, wire, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, wire) {
		t.Fatalf("%s differs from the encoder's output (run go test -update)", path)
	}
	out, errOut, code := runCLI(t, "decode", "-t", templatesPath, "--framing", "seq32", path)
	if code != 0 {
		t.Fatalf("decode exit %d: %s", code, errOut)
	}
	golden := path + ".jsonl"
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatalf("decode output differs from %s:\n%s", golden, out)
	}
}

func TestDecodeFramings(t *testing.T) {
	ts, err := fast.LoadFile(templatesPath)
	if err != nil {
		t.Fatal(err)
	}
	msgs := sampleMessages(t, ts)
	dir := t.TempDir()
	var reference []map[string]any
	for _, kind := range []string{"seq32", "stream", "len32"} {
		path := filepath.Join(dir, kind)
		if err := os.WriteFile(path, frame(t, ts, msgs, kind), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCLI(t, "decode", "-t", templatesPath, "--framing", kind, path)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", kind, code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(msgs) {
			t.Fatalf("%s: %d lines, want %d", kind, len(lines), len(msgs))
		}
		var objs []map[string]any
		for _, l := range lines {
			var o map[string]any
			if err := json.Unmarshal([]byte(l), &o); err != nil {
				t.Fatalf("%s: invalid JSON %q: %v", kind, l, err)
			}
			objs = append(objs, o)
		}
		for i, o := range objs {
			if o["template"] != msgs[i].Template.Name {
				t.Errorf("%s line %d: template %v, want %s", kind, i, o["template"], msgs[i].Template.Name)
			}
		}
		if kind == "seq32" {
			reference = objs
			continue
		}
		for i := range objs {
			a, _ := json.Marshal(objs[i]["fields"])
			b, _ := json.Marshal(reference[i]["fields"])
			if !bytes.Equal(a, b) {
				t.Errorf("%s message %d fields differ from seq32:\n%s\n%s", kind, i, a, b)
			}
		}
	}
}

// TestDecodePcap writes the sample datagrams into a capture and decodes it with the pcap
// framing: the output must equal the seq32 output of the same datagrams.
func TestDecodePcap(t *testing.T) {
	wire, err := os.ReadFile("../../fixtures/sample.seq32")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := fast.LoadFile(templatesPath)
	if err != nil {
		t.Fatal(err)
	}
	// Split the seq32 file into datagrams by decoding it.
	dec := fast.NewDecoder(ts)
	var m fast.Message
	var datagrams [][]byte
	for pos := 0; pos < len(wire); {
		dec.Reset()
		n, err := dec.Decode(wire[pos+4:], &m)
		if err != nil {
			t.Fatal(err)
		}
		datagrams = append(datagrams, wire[pos:pos+4+n])
		pos += 4 + n
	}
	for _, format := range []replay.Format{replay.Pcap, replay.PcapNG} {
		path := filepath.Join(t.TempDir(), "cap")
		w, err := replay.Create(path, format)
		if err != nil {
			t.Fatal(err)
		}
		src := netip.MustParseAddrPort("127.0.0.1:40000")
		dst := netip.MustParseAddrPort("239.1.2.3:30001")
		for i, d := range datagrams {
			if err := w.WriteUDP(int64(1795372800e9+i), src, dst, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, errOut, code := runCLI(t, "decode", "-t", templatesPath, "--framing", "pcap", path)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", format, code, errOut)
		}
		want, _, _ := runCLI(t, "decode", "-t", templatesPath, "--framing", "seq32", "../../fixtures/sample.seq32")
		if got != want {
			t.Errorf("%v: pcap decode differs from seq32:\n%s\nwant\n%s", format, got, want)
		}
	}
}

func TestDecodeValues(t *testing.T) {
	out, errOut, code := runCLI(t, "decode", "-t", templatesPath, "--framing", "seq32", "--skip", "1", "../../fixtures/sample.seq32")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	first := strings.SplitN(out, "\n", 2)[0]
	want := `{"seq":2,"template":"MDIncRefresh","id":1,"fields":{"MessageType":"X","ApplVerID":"9","MsgSeqNum":2,"SendingTime":1795372800123457789,"MDEntries":[{"MDUpdateAction":0,"MDEntryType":"0","Symbol":"SBER","RptSeq":1,"MDEntryPx":"284.55","MDEntrySize":"1200","NumberOfOrders":1},{"MDUpdateAction":0,"MDEntryType":"1","Symbol":"SBER","RptSeq":2,"MDEntryPx":"284.7","MDEntrySize":"300","NumberOfOrders":1},{"MDUpdateAction":0,"MDEntryType":"2","Symbol":"SBER","RptSeq":3,"MDEntryID":"T1001","MDEntryPx":"284.6","MDEntrySize":"10"}]}}`
	if first != want {
		t.Fatalf("got  %s\nwant %s", first, want)
	}
}

func TestDecodeErrorsAndSummary(t *testing.T) {
	wire, err := os.ReadFile("../../fixtures/sample.seq32")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := append([]byte(nil), wire...)
	// Corrupt the second message's template identifier (seq32 header 4 bytes, then pmap,
	// then the identifier) into an unknown one.
	firstLen := bytes.Index(wire[4:], []byte{0x02, 0, 0, 0}) + 4
	bad[firstLen+5] = 0xe3 // template 99
	path := filepath.Join(dir, "bad")
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "decode", "-t", templatesPath, "--framing", "seq32", path)
	if code == 0 {
		t.Fatal("decode of a corrupt file exited 0")
	}
	if got := strings.Count(out, "\n"); got != 1 {
		t.Errorf("printed %d messages before the error, want 1", got)
	}
	if !strings.Contains(errOut, "D9") || !strings.Contains(errOut, "offset") {
		t.Errorf("error %q does not name the code D9 and the offset", errOut)
	}

	trunc := filepath.Join(dir, "trunc")
	if err := os.WriteFile(trunc, wire[:len(wire)-2], 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, "decode", "-t", templatesPath, "--framing", "seq32", "--summary", trunc)
	if code == 0 || !strings.Contains(errOut, "EOF") {
		t.Errorf("truncated input: exit %d, stderr %q", code, errOut)
	}
	var s struct {
		Messages, Bytes, Errors int
		NsPerMessage            float64 `json:"ns_per_message"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary %q: %v", out, err)
	}
	if s.Messages != 5 || s.Errors != 1 {
		t.Errorf("summary %+v, want 5 messages and 1 error", s)
	}

	out, _, code = runCLI(t, "decode", "-t", templatesPath, "--framing", "seq32", "--summary", "../../fixtures/sample.seq32")
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Messages != 6 || s.Bytes != len(wire) || s.Errors != 0 {
		t.Errorf("summary of the sample: exit %d, %q", code, out)
	}

	for _, args := range [][]string{
		{"decode"}, // no input (-t is optional: TestDecodeWithoutTemplates)
		{"decode", "-t", templatesPath},
		{"decode", "-t", templatesPath, "--framing", "bogus", "x"},
		{"nosuchcommand"},
	} {
		if _, _, code := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
