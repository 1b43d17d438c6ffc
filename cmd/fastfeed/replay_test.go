package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"fastfeed/book"
	"fastfeed/internal/netns"
	"fastfeed/replay"
)

// tcpdumpEnv returns the environment that lets tcpdump run as root in the test's user
// namespace. tcpdump, run as root, drops privileges with initgroups, setgid and setuid
// (to its "tcpdump" user, or the one given with -Z); in an unprivileged user namespace
// setgroups is denied, so initgroups fails and tcpdump exits. With -Z root the setgid
// and setuid are no-ops; the preloaded shim makes initgroups one too. Nothing else of
// tcpdump changes.
func tcpdumpEnv(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("tcpdump is not installed: run `make deps` (scripts/deps.sh)")
	}
	dir := t.TempDir()
	src, so := filepath.Join(dir, "shim.c"), filepath.Join(dir, "shim.so")
	const shim = "#include <sys/types.h>\nint initgroups(const char *user, gid_t group) { (void)user; (void)group; return 0; }\n"
	if err := os.WriteFile(src, []byte(shim), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cc", "-shared", "-fPIC", "-o", so, src).CombinedOutput(); err != nil {
		t.Fatalf("building the initgroups shim for tcpdump (needs a C compiler): %v\n%s", err, out)
	}
	return append(os.Environ(), "LD_PRELOAD="+so)
}

// tcpdump runs tcpdump with args in the test's namespace and returns its exit status and
// output.
func tcpdump(t *testing.T, ctx context.Context, env []string, args ...string) (string, string) {
	t.Helper()
	cmd, err := netns.Command(ctx, "tcpdump", append([]string{"-Z", "root"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = env
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tcpdump %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// startTcpdump starts a capture of every UDP datagram on lo into path and waits until it
// listens.
func startTcpdump(t *testing.T, ctx context.Context, env []string, path string) *process {
	t.Helper()
	cmd, err := netns.Command(ctx, "tcpdump", "-i", "lo", "-w", path, "-U", "--immediate-mode", "-B", "65536", "-Z", "root", "udp")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = env
	p := &process{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	p.waitFor(t, "listening on")
	return p
}

// interrupt stops a process with SIGINT and waits for it.
func (p *process) interrupt(t *testing.T, name string) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.wait(t, name)
}

// logInt returns the integer value of key=N in the last line of log holding msg.
func logInt(t *testing.T, log, msg, key string) int {
	t.Helper()
	var line string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, msg) {
			line = l
		}
	}
	m := regexp.MustCompile(`\b` + regexp.QuoteMeta(key) + `=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no %s=N on the %q line of:\n%s", key, msg, log)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// countRecords counts a capture's records with tcpdump -r.
func countRecords(t *testing.T, ctx context.Context, env []string, path string) int {
	t.Helper()
	out, _ := tcpdump(t, ctx, env, "-n", "-r", path)
	return strings.Count(out, "\n")
}

var eightTopics = "AAPL,GAZP,GMKN,LKOH,MSFT,NVDA,SBER,USD000UTSTOM"

// TestReplayCaptures runs the publisher while tcpdump and fastfeed record capture it,
// then replays both captures as fast as possible: the books must be the publisher's
// ground truth. tcpdump -r reads fastfeed record's file back with the same count. Then a
// copy of the tcpdump capture with datagrams cut out is replayed with --fix-connect to
// the publisher's recovery service (it lingers): the holes are reported and recovered.
func TestReplayCaptures(t *testing.T) {
	bin := fastfeedBinary(t)
	env := tcpdumpEnv(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tdPath, recPath, pubDump := filepath.Join(dir, "tcpdump.pcap"), filepath.Join(dir, "record.pcapng"), filepath.Join(dir, "pub.jsonl")

	td := startTcpdump(t, ctx, env, tdPath)
	rec := start(t, ctx, bin, "record", "--out", recPath, "--topics", eightTopics)
	rec.waitFor(t, "msg=recording")
	pub := start(t, ctx, bin, "pub", "--instruments", "8", "--count", "3000", "--rate", "3000", "--dump-books", pubDump, "--linger", "1m")
	defer pub.cmd.Process.Kill()
	pub.waitFor(t, "books dumped")
	time.Sleep(300 * time.Millisecond) // the last datagrams reach the capturers
	td.interrupt(t, "tcpdump")
	rec.interrupt(t, "record")
	if !regexp.MustCompile(`(?m)^0 packets dropped by kernel`).MatchString(td.stderr.String()) {
		t.Fatalf("tcpdump lost packets (the books cannot match):\n%s", td.stderr.String())
	}
	if logInt(t, rec.stderr.String(), "msg=recorded", "kernel_drops") != 0 || logInt(t, rec.stderr.String(), "msg=recorded", "no_kernel_timestamp") != 0 {
		t.Fatalf("fastfeed record lost datagrams or kernel timestamps:\n%s", rec.stderr.String())
	}
	truth := readDump(t, pubDump)
	if len(truth) != 8 {
		t.Fatalf("ground truth of %d books", len(truth))
	}

	replayCheck := func(name, path string, args ...string) (string, map[string]any) {
		t.Helper()
		dump, stats := filepath.Join(dir, name+".jsonl"), filepath.Join(dir, name+".json")
		code, _, stderr := fastfeed(t, ctx, bin, append([]string{"replay", path, "--dump-books", dump, "--stats-out", stats}, args...)...)
		if code != 0 {
			t.Fatalf("replay %s: exit %d\n%s", name, code, stderr)
		}
		return stderr, readJSON(t, stats)
	}

	t.Run("tcpdump capture", func(t *testing.T) {
		log, st := replayCheck("tcpdump", tdPath, "--max")
		if d := book.DiffDumps(readDump(t, filepath.Join(dir, "tcpdump.jsonl")), truth); d != "" {
			t.Fatalf("books differ from the publisher's:\n%s", d)
		}
		if n := countRecords(t, ctx, env, tdPath); st["packets"] != float64(n) || st["skipped"] != 0.0 || st["gaps"] != 0.0 || st["stale_books"] != 0.0 {
			t.Errorf("tcpdump -r counts %d records; stats %v\n%s", n, st, log)
		}
	})
	t.Run("fastfeed record capture", func(t *testing.T) {
		recorded := logInt(t, rec.stderr.String(), "msg=recorded", "datagrams")
		if n := countRecords(t, ctx, env, recPath); n != recorded || n < 3000 {
			t.Fatalf("tcpdump -r reads %d records; fastfeed record wrote %d", n, recorded)
		}
		_, st := replayCheck("record", recPath, "--max", "--topics", eightTopics)
		if d := book.DiffDumps(readDump(t, filepath.Join(dir, "record.jsonl")), truth); d != "" {
			t.Fatalf("books differ from the publisher's:\n%s", d)
		}
		if st["packets"] != float64(recorded) || st["datagrams"] != float64(recorded) || st["gaps"] != 0.0 {
			t.Errorf("stats %v", st)
		}
	})
	t.Run("holes recovered over FIX", func(t *testing.T) {
		damaged := filepath.Join(dir, "damaged.pcapng")
		cut := cutDatagrams(t, tdPath, damaged, 1000, 5)
		log, st := replayCheck("damaged", damaged, "--max", "--fix-connect", "127.0.0.1:9870")
		if d := book.DiffDumps(readDump(t, filepath.Join(dir, "damaged.jsonl")), truth); d != "" {
			t.Fatalf("books differ from the publisher's:\n%s\n%s", d, log)
		}
		// The cut skips small datagrams (heartbeats), so it may leave more than one hole;
		// the handler counts holes opened while one is being recovered as one gap.
		holes, _ := st["capture_holes"].(float64)
		gaps, _ := st["gaps"].(float64)
		if holes < 1 || gaps < 1 || gaps > holes || st["missing"] != float64(cut) || st["recovered_fix"] != float64(cut) ||
			st["capture_missing"] != float64(cut) || st["stale_books"] != 0.0 {
			t.Errorf("cut %d datagrams; stats %v", cut, st)
		}
		if !strings.Contains(log, `msg="gap in the capture"`) {
			t.Errorf("the hole is not reported:\n%s", log)
		}
	})
}

// cutDatagrams copies the capture in to out, leaving out the first n incremental
// datagrams (heartbeats pass) of the channel of datagram from onwards, and returns how
// many it left out.
func cutDatagrams(t *testing.T, in, out string, from, n int) int {
	t.Helper()
	r, err := replay.Open(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := replay.Create(out, replay.PcapNG)
	if err != nil {
		t.Fatal(err)
	}
	var d replay.Datagram
	cut := 0
	var ch string
	for i := 0; ; i++ {
		err := r.Next(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == from {
			ch = d.Dst.String()
		}
		if ch == d.Dst.String() && cut < n && len(d.Payload) > 40 { // incrementals, not heartbeats
			cut++
			continue
		}
		if err := w.WriteDatagram(&d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if cut != n {
		t.Fatalf("cut %d datagrams of %d", cut, n)
	}
	return cut
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestReplayFixture replays the committed tcpdump capture and compares the books with
// the committed ground truth, byte for byte; with --progress always the bar shows.
func TestReplayFixture(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dump, stats := filepath.Join(dir, "books.jsonl"), filepath.Join(dir, "stats.json")
	code, stdout, stderr := fastfeed(t, ctx, bin, "replay", "fixtures/feed.pcap", "--max", "--dump-books", dump, "--stats-out", stats, "--progress", "always")
	if code != 0 || stdout != "" {
		t.Fatalf("exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	got, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "feed.books.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("dump differs from fixtures/feed.books.jsonl:\n%s", book.DiffDumps(readDump(t, dump), readDump(t, filepath.Join("..", "..", "fixtures", "feed.books.jsonl"))))
	}
	st := readJSON(t, stats)
	for k, v := range map[string]float64{"packets": 1519, "skipped": 0, "datagrams": 1515, "not_joined": 4, "gaps": 0, "decode_errors": 0, "instruments": 4, "stale_books": 0, "malformed_packets": 0} {
		if st[k] != v {
			t.Errorf("stats %s = %v, want %v", k, st[k], v)
		}
	}
	for _, want := range []string{"ETA", "100%", `msg="replay done" packets=1519 datagrams=1515`, "books=4"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no %q in:\n%s", want, stderr)
		}
	}
}

// TestReplayToMulticast re-sends the fixture capture onto loopback multicast at 4 times
// its pace; a separate fastfeed feed builds the publisher's books from it.
func TestReplayToMulticast(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dump, stats := filepath.Join(dir, "feed.jsonl"), filepath.Join(dir, "stats.json")
	h := start(t, ctx, bin, "feed", "--topics", "AAPL,GAZP,LKOH,SBER", "--duration", "3s", "--dump-books", dump, "--stats-out", stats)
	h.waitFor(t, "feed handler started")
	code, _, stderr := fastfeed(t, ctx, bin, "replay", "fixtures/feed.pcap", "--to-multicast", "--speed", "4")
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "datagrams=1519") {
		t.Errorf("replay log:\n%s", stderr)
	}
	h.wait(t, "feed")
	if d := book.DiffDumps(readDump(t, dump), readDump(t, filepath.Join("..", "..", "fixtures", "feed.books.jsonl"))); d != "" {
		t.Fatalf("the handler's books differ from the publisher's:\n%s\n%s", d, h.stderr.String())
	}
	if st := readStats(t, stats); st.Gaps != 0 || st.StaleBooks != 0 {
		t.Errorf("handler counters %+v", st)
	}
}

// TestReplayRecordErrors: bad command lines exit 2, unreadable captures 1, each with a
// message that says what is wrong.
func TestReplayRecordErrors(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	notCapture := filepath.Join(dir, "not.pcap")
	if err := os.WriteFile(notCapture, []byte("hello, this is text"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"replay"}, 2, "give exactly one capture FILE"},
		{[]string{"replay", "a.pcap", "b.pcap"}, 2, "give exactly one capture FILE"},
		{[]string{"replay", "fixtures/feed.pcap", "--speed", "0"}, 2, "--speed 0"},
		{[]string{"replay", "fixtures/feed.pcap", "--speed", "2", "--max"}, 2, "at most one of --speed and --max"},
		{[]string{"replay", "fixtures/feed.pcap", "--iface", "127.0.0.1"}, 2, "--iface needs --to-multicast"},
		{[]string{"replay", "fixtures/feed.pcap", "--to-multicast", "--dump-books", "x"}, 2, "--to-multicast"},
		{[]string{"replay", "fixtures/feed.pcap", "--progress", "sometimes"}, 2, "--progress"},
		{[]string{"replay", filepath.Join(dir, "missing.pcap")}, 1, "no such file"},
		{[]string{"replay", notCapture, "--max"}, 1, "not a pcap or pcapng capture"},
		{[]string{"record"}, 2, "--out FILE is required"},
		{[]string{"record", "--out", filepath.Join(dir, "x"), "--all", "--topics", "SBER"}, 2, "exactly one of --topics, --groups and --all"},
		{[]string{"record", "--out", filepath.Join(dir, "x"), "--all", "--format", "cap"}, 2, `--format "cap"`},
		{[]string{"record", "--out", filepath.Join(dir, "x"), "--groups", "10.0.0.1"}, 2, "not a multicast group"},
		{[]string{"record", "--out", filepath.Join(dir, "x"), "--groups", "239.1.1.1:0"}, 2, "bad port"},
		{[]string{"record", "--out", filepath.Join(dir, "no", "dir", "x"), "--all", "--duration", "1s"}, 1, "no such file"},
	} {
		code, _, stderr := fastfeed(t, ctx, bin, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("fastfeed %s: exit %d, want %d, with %q in:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, stderr)
		}
	}
}

// TestReplayDamagedCapture replays a copy of the fixture with an ARP frame, an IPv4
// header too short to be one, a datagram that is no FAST message and a cut last record:
// each is reported with its packet number, skipped and counted, and the replay goes on.
func TestReplayDamagedCapture(t *testing.T) {
	in, err := os.Open(filepath.Join("..", "..", "fixtures", "feed.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "damaged.pcap")
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	frame := func(ipHeader0 byte, dst [4]byte, payload []byte) []byte {
		f := make([]byte, 14, 42+len(payload))
		f[12] = 0x08 // IPv4
		ip := []byte{ipHeader0, 0, 0, 0, 0, 0, 0, 0, 1, 17, 0, 0, 127, 0, 0, 1, dst[0], dst[1], dst[2], dst[3]}
		binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
		udp := []byte{0x75, 0x30, 0x75, 0x31, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
		return append(append(append(f, ip...), udp...), payload...)
	}
	sber := [4]byte{239, 137, 173, 234} // SBER's channel, port 30001
	junk := []byte{1, 0, 0, 0, 0xff, 0xff, 0xff}
	arp := append(make([]byte, 12), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	n := 0
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		var extra []byte
		switch n {
		case 10:
			extra = arp // record 11
		case 20:
			extra = frame(0x43, sber, junk) // IHL 3: record 22
		case 30:
			extra = frame(0x45, sber, junk) // record 33
		}
		if extra != nil {
			ci.CaptureLength, ci.Length = len(extra), len(extra)
			if err := w.WritePacket(ci, extra); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(path, buf.Bytes()[:buf.Len()-5], 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stats := filepath.Join(dir, "stats.json")
	code, _, stderr := fastfeed(t, ctx, fastfeedBinary(t), "replay", path, "--max", "--stats-out", stats)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		`msg="capture record skipped" packet=22 error="bad header`,
		`msg="malformed payload" packet=33 dst=239.137.173.234:30001`,
		`msg="capture cut short`, "record 1522", "truncated file",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no %q in:\n%s", want, stderr)
		}
	}
	st := readJSON(t, stats)
	for k, v := range map[string]float64{"packets": 1521, "skipped": 1, "malformed_packets": 1, "malformed_payloads": 1, "decode_errors": 1} {
		if st[k] != v {
			t.Errorf("stats %s = %v, want %v", k, st[k], v)
		}
	}
	if _, ok := st["file_error"]; !ok {
		t.Errorf("stats without file_error: %v", st)
	}
}
