package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/netns"
	"fastfeed/mcast"
	"fastfeed/md"
	"fastfeed/publisher"
)

// fastfeedBinary builds the command into the test's temporary directory.
func fastfeedBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fastfeed")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// fastfeed runs the binary bin in the test's network namespace, from the
// repository root, and returns its exit status and output.
func fastfeed(t *testing.T, ctx context.Context, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd, err := netns.Command(ctx, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = filepath.Join("..", "..")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestPubCommand runs `fastfeed pub` for a second at 2000 datagrams/s,
// listens to SBER's channel meanwhile, and checks the exit status, the log
// and the dump.
func TestPubCommand(t *testing.T) {
	dump := filepath.Join(t.TempDir(), "books.jsonl")
	poller, err := mcast.NewPoller(mcast.PollerConfig{ReadBuffer: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()
	sber := mcast.DefaultMapping().Group("SBER")
	if _, err := poller.JoinGroup(netip.AddrPortFrom(sber, publisher.DefaultPort)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	statsOut := filepath.Join(t.TempDir(), "stats.json")
	code, stdout, stderr := fastfeed(t, ctx, fastfeedBinary(t), "pub", "--instruments", "5", "--rate", "2000", "--duration", "1s", "--dump-books", dump,
		"--stats-out", statsOut, "--fix-max-connections", "50", "--fix-max-connections-per-source", "5", "--fix-max-logon-size", "1024", "--fix-logon-timeout", "2s")
	if code != 0 {
		t.Fatalf("exit status %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "max_connections=50 max_connections_per_source=5 max_logon_size=1024 logon_timeout=2s") {
		t.Errorf("the recovery service did not log the limits of the command line:\n%s", stderr)
	}
	if b, err := os.ReadFile(statsOut); err != nil {
		t.Error(err)
	} else {
		var st struct {
			FIX *fixsession.AcceptorStats `json:"fix_acceptor"`
		}
		if err := json.Unmarshal(b, &st); err != nil || st.FIX == nil || *st.FIX != (fixsession.AcceptorStats{}) {
			t.Errorf("pub --stats-out: fix_acceptor missing or not zero with no client (%v): %s", err, b)
		}
	}
	if stdout != "" {
		t.Errorf("stdout: %q", stdout)
	}
	for _, want := range []string{"msg=publishing instruments=5 channels=5", `msg="data stopped"`, "msg=\"books dumped\""} {
		if !strings.Contains(stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, stderr)
		}
	}
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	d, err := book.ReadDump(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 5 {
		t.Fatalf("dump of %d books", len(d))
	}
	b, ok := d.Lookup("SBER")
	if !ok || len(b.Bids) == 0 || len(b.Asks) == 0 || b.RptSeq == 0 {
		t.Errorf("SBER's book: %+v", b)
	}

	// What SBER's channel carried: decodable, sequenced, SBER's entries.
	ts, err := fast.LoadFile(templatesPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := md.NewCodec(ts)
	if err != nil {
		t.Fatal(err)
	}
	ms := make([]mcast.Message, 256)
	for i := range ms {
		ms[i].Buf = make([]byte, 2048)
	}
	var last uint32
	var incs, kinds int
	seen := map[md.Kind]bool{}
	for {
		n, err := poller.ReadBatch(ms, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		for _, m := range ms[:n] {
			seq, kind, err := publisher.DecodeDatagram(c, m.Buf[:m.N])
			if err != nil {
				t.Fatal(err)
			}
			if !seen[kind] {
				seen[kind] = true
				kinds++
			}
			if !kind.Sequenced() {
				continue
			}
			if seq != last+1 {
				t.Fatalf("SBER's channel: sequence number %d after %d", seq, last)
			}
			last = seq
			if kind == md.KindIncremental {
				incs++
				for _, e := range c.Incremental.Entries {
					if string(e.Symbol) != "SBER" {
						t.Fatalf("entry of %s on SBER's channel", e.Symbol)
					}
				}
			}
		}
	}
	if incs < 100 || !seen[md.KindReset] || !seen[md.KindStatus] || !seen[md.KindHeartbeat] {
		t.Errorf("SBER's channel: %d incrementals, kinds %v", incs, seen)
	}
}

// TestPubCommandSignal: SIGTERM stops an unbounded run cleanly, with the dump
// written and exit status 0.
func TestPubCommandSignal(t *testing.T) {
	dump := filepath.Join(t.TempDir(), "books.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, err := netns.Command(ctx, fastfeedBinary(t), "pub", "--instruments", "3", "--rate", "500", "--dump-books", dump, "--linger", "1h")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = filepath.Join("..", "..")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(stderr.String(), "msg=publishing") {
		if ctx.Err() != nil {
			t.Fatalf("no startup line:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := book.ReadDump(bytes.NewReader(data)); err != nil || len(d) != 3 {
		t.Fatalf("dump: %d books, %v", len(d), err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPubCommandErrors: bad flags exit 2, bad configuration files 1, each
// with a message that says what is wrong.
func TestPubCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\n  \"instruments\": [{\"symbol\": \"SBER\", \"tick\": \"0.01\", \"start_price\": \"1\", \"lot\": 5}]\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	offTick := filepath.Join(dir, "offtick.json")
	if err := os.WriteFile(offTick, []byte(`{"instruments": [{"symbol": "LKOH", "tick": "0.5", "start_price": "7050.2"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin := fastfeedBinary(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pub", "--bogus"}, 2, "unknown flag --bogus"},
		{[]string{"pub", "--rate", "-1"}, 2, "--rate -1"},
		{[]string{"pub", "--rate", "fast"}, 2, `--rate "fast": want a number such as 0.5`},
		{[]string{"pub", "--port", "70000"}, 2, "--port 70000"},
		{[]string{"pub", "--instruments", "0"}, 2, "--instruments 0"},
		{[]string{"pub", "--group-base", "10.1.2.3"}, 2, "not a multicast address"},
		{[]string{"pub", "--iface", "nosuch0"}, 2, `--iface "nosuch0"`},
		{[]string{"pub", "--payload-limit", "10"}, 2, "--payload-limit 10"},
		{[]string{"pub", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"pub", "--config", "fixtures/pub.json", "--instruments", "3"}, 2, "--instruments conflicts"},
		{[]string{"pub", "--config", filepath.Join(dir, "missing.json")}, 1, "missing.json: no such file"},
		{[]string{"pub", "--config", bad}, 1, bad + `: line 2: unknown key "lot"`},
		{[]string{"pub", "--config", offTick}, 1, "instruments[0] (LKOH): start price 7050.2 is not a multiple of the tick 0.5"},
		{[]string{"pub", "--templates", filepath.Join(dir, "none.xml")}, 1, "none.xml"},
		{[]string{"pub", "--b-port", "30001"}, 1, "the B line is the A line"},
		{[]string{"pub", "--count", "10", "--dump-books", filepath.Join(dir, "no", "dir", "books.jsonl")}, 1, "dump books"},
	} {
		code, _, stderr := fastfeed(t, ctx, bin, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("fastfeed %s: exit %d, want %d, with %q in:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, stderr)
		}
	}
}
