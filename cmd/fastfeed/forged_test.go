package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
)

// writeKeyFile writes a datagram key file (hex) and returns its path.
func writeKeyFile(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "mcast.key")
	if err := os.WriteFile(p, []byte(strings.Repeat("3f1e", 16)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// attacker is a program on the same host as the publisher and the handlers: it reads the
// feed of one channel (without the key: it drops the trailer unread) and sends its own
// datagrams from its own socket.
type attacker struct {
	codec   *md.Codec
	poller  *mcast.Poller
	sender  *mcast.Sender
	trailer int // bytes to drop from the end of each datagram read
}

func newAttacker(t *testing.T, group netip.AddrPort, keyed bool) *attacker {
	t.Helper()
	ts, err := fast.LoadFile(filepath.Join("..", "..", "fixtures", "templates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{}
	if a.codec, err = md.NewCodec(ts); err != nil {
		t.Fatal(err)
	}
	if a.poller, err = mcast.NewPoller(mcast.PollerConfig{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.poller.Close() })
	if _, err := a.poller.JoinGroup(group); err != nil {
		t.Fatal(err)
	}
	if a.sender, err = mcast.NewSender(mcast.SenderConfig{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.sender.Close() })
	if keyed {
		a.trailer = dgauth.Overhead
	}
	return a
}

// forgeNext waits for the skip-th incremental of symbol on the channel, then at once sends
// the attack of issue 18, hole 5: the channel's next sequence number, the instrument's
// next RptSeq, a bid at half the last entry's price with size 777. It returns the forged
// sequence number.
func (a *attacker) forgeNext(t *testing.T, ctx context.Context, group netip.AddrPort, symbol string, skip int) uint32 {
	t.Helper()
	msgs := make([]mcast.Message, 16)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
	}
	seen := 0
	for ctx.Err() == nil {
		n, err := a.poller.ReadBatch(msgs, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for i := range msgs[:n] {
			d := msgs[i].Buf[:msgs[i].N]
			if len(d) < 4+a.trailer {
				continue
			}
			d = d[:len(d)-a.trailer]
			kind, err := a.codec.Decode(d[4:])
			if err != nil || kind != md.KindIncremental {
				continue
			}
			var last *md.Entry
			for j := range a.codec.Incremental.Entries {
				if e := &a.codec.Incremental.Entries[j]; string(e.Symbol) == symbol {
					last = e
				}
			}
			if last == nil {
				continue
			}
			if seen++; seen < skip {
				continue
			}
			seq := binary.LittleEndian.Uint32(d) + 1
			e := md.Entry{Action: md.New, Type: md.Bid, Symbol: []byte(symbol), RptSeq: last.RptSeq + 1,
				Price: md.Dec(last.Price.Mantissa/2, last.Price.Exp), Size: md.Dec(777, 0), Orders: 1}
			forged := binary.LittleEndian.AppendUint32(nil, seq)
			forged, err = a.codec.AppendIncremental(forged, &md.Incremental{Header: md.Header{SeqNum: seq, SendingTime: time.Now().UnixNano()}, Entries: []md.Entry{e}})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.sender.WriteTo(forged, group); err != nil {
				t.Fatal(err)
			}
			return seq
		}
	}
	t.Fatalf("no incremental of %s on %v", symbol, group)
	return 0
}

// TestForgedDatagram performs the attack of issue 18, hole 5 with real processes in
// this test's private network namespace: fastfeed pub (one instrument, SBER), fastfeed
// feed following SBER with FIX recovery, and the attacker (this test) on the same host,
// which reads the feed and sends the forged datagram ahead of the publisher's next one.
//
// Without --mcast-key the network is trusted: the forged datagram is applied, the
// publisher's true datagram of that number then differs from the copy taken, and the
// handler counts ab_mismatch 1, marks the book stale and rebuilds it from a snapshot; its
// book ends equal to the publisher's. With --mcast-key on both, the forged datagram is
// refused (auth_failures 1), no snapshot is needed, the book equals the publisher's.
func TestForgedDatagram(t *testing.T) {
	bin := fastfeedBinary(t)
	keyFile := writeKeyFile(t, t.TempDir())
	sber := netip.AddrPortFrom(mcast.DefaultMapping().Group("SBER"), 30001)
	for _, keyed := range []bool{false, true} {
		t.Run(fmt.Sprintf("key=%v", keyed), func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var key []string
			if keyed {
				key = []string{"--mcast-key", keyFile}
			}
			feedDump, pubDump, stats := filepath.Join(dir, "feed.jsonl"), filepath.Join(dir, "pub.jsonl"), filepath.Join(dir, "stats.json")
			a := newAttacker(t, sber, keyed)
			h := start(t, ctx, bin, append([]string{"feed", "--topics", "SBER", "--fix-connect", "127.0.0.1:9870",
				"--dump-books", feedDump, "--stats-out", stats, "--log-level", "debug"}, key...)...)
			h.waitFor(t, "feed handler started")
			p := start(t, ctx, bin, append([]string{"pub", "--instruments", "1", "--rate", "40", "--count", "120",
				"--fix-listen", "127.0.0.1:9870", "--dump-books", pubDump, "--linger", "1m"}, key...)...)
			defer p.cmd.Process.Kill()
			forged := a.forgeNext(t, ctx, sber, "SBER", 20)
			p.waitFor(t, "books dumped")
			time.Sleep(300 * time.Millisecond) // the last heartbeat, and any snapshot answer
			h.interrupt(t, "feed")
			st := readStats(t, stats)
			if d := book.DiffDumps(readDump(t, feedDump), readDump(t, pubDump)); d != "" {
				t.Fatalf("books differ from the publisher's (forged seq %d):\n%s\n%s", forged, d, h.stderr.String())
			}
			log := h.stderr.String()
			if keyed {
				if st.AuthFailures != 1 || st.ABMismatch != 0 || st.Snapshots != 0 || st.StaleEvents != 0 || st.DecodeErrors != 0 {
					t.Errorf("forged seq %d; counters %+v: want auth_failures 1 and no snapshot", forged, st)
				}
				if !strings.Contains(log, "line A: datagram of") || !strings.Contains(log, "refused: dgauth:") {
					t.Errorf("the refusal is not logged:\n%s", log)
				}
			} else {
				if st.ABMismatch != 1 || st.AuthFailures != 0 || st.SnapshotsDone < 1 || st.StaleBooks != 0 {
					t.Errorf("forged seq %d; counters %+v: want ab_mismatch 1 and a snapshot applied", forged, st)
				}
				if !strings.Contains(log, fmt.Sprintf("seq %d: the copy from line A differs", forged)) {
					t.Errorf("the mismatch is not logged:\n%s", log)
				}
			}
			if !strings.Contains(log, `msg="datagrams not from the publisher"`) {
				t.Errorf("no warning at exit:\n%s", log)
			}
		})
	}
}

// TestRecordReplayWithKey records a sealed feed with fastfeed record --all --mcast-key
// while the attacker sends a forged incremental on SBER's channel and a forged security
// definition naming a channel of its own (after a first short run of the publisher has made
// record join the instruments' channels): record writes every datagram as received but
// does not follow the forged definition; fastfeed replay --mcast-key refuses both forged
// datagrams (auth_failures 2) and its books equal the publisher's. The same capture
// replayed without the key fails loudly: every sealed datagram is a decode error (the
// trailer is 17 bytes after the FAST message) and the only book is the attacker's, from
// its unsealed definition: without a key, nothing tells a forgery.
func TestRecordReplayWithKey(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	keyFile := writeKeyFile(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	capture, pubDump := filepath.Join(dir, "feed.pcapng"), filepath.Join(dir, "pub.jsonl")
	sber := netip.AddrPortFrom(mcast.DefaultMapping().Group("SBER"), 30001)
	defs := netip.MustParseAddrPort("239.0.0.0:30001")
	a := newAttacker(t, sber, true)
	rec := start(t, ctx, bin, "record", "--all", "--out", capture, "--mcast-key", keyFile)
	rec.waitFor(t, "msg=recording")
	// A first, short run makes record join the instruments' channels from their
	// definitions; the second starts them again with a sequence reset, all recorded.
	if code, _, log := fastfeed(t, ctx, bin, "pub", "--instruments", "3", "--count", "1", "--mcast-key", keyFile); code != 0 {
		t.Fatalf("pub: exit %d\n%s", code, log)
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Count(rec.stderr.String(), "msg=joined") < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("record did not join the channels:\n%s", rec.stderr.String())
		}
	}
	p := start(t, ctx, bin, "pub", "--instruments", "3", "--rate", "100", "--count", "200", "--dump-books", pubDump, "--mcast-key", keyFile)
	a.forgeNext(t, ctx, sber, "SBER", 10)
	def := md.Definition{Symbol: []byte("EVIL"), SecurityID: 666, Tick: md.Dec(1, -2), PriceExp: -2, BookType: md.PriceDepth,
		MarketDepth: 20, Channel: []byte("G239.9.9.9:30001")}
	forgedDef := binary.LittleEndian.AppendUint32(nil, 3)
	forgedDef, err := a.codec.AppendDefinition(forgedDef, &def)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.sender.WriteTo(forgedDef, defs); err != nil {
		t.Fatal(err)
	}
	p.wait(t, "pub")
	time.Sleep(200 * time.Millisecond)
	rec.interrupt(t, "record")
	rlog := rec.stderr.String()
	if strings.Contains(rlog, "239.9.9.9") || logInt(t, rlog, "forged definitions", "auth_failures") != 1 {
		t.Fatalf("record followed the forged definition or did not count it:\n%s", rlog)
	}

	dump, stats := filepath.Join(dir, "replay.jsonl"), filepath.Join(dir, "replay.json")
	code, _, log := fastfeed(t, ctx, bin, "replay", capture, "--max", "--mcast-key", keyFile, "--dump-books", dump, "--stats-out", stats)
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, log)
	}
	if d := book.DiffDumps(readDump(t, dump), readDump(t, pubDump)); d != "" {
		t.Fatalf("books differ from the publisher's:\n%s\n%s", d, log)
	}
	st := readJSON(t, stats)
	if st["auth_failures"] != 2.0 || st["ab_mismatch"] != 0.0 || st["decode_errors"] != 0.0 || st["stale_books"] != 0.0 || st["instruments"] != 3.0 {
		t.Errorf("stats %v: want auth_failures 2 (the forged incremental and definition), 3 books", st)
	}

	// The capture names the key file record was given: replay takes it unasked.
	code, _, log = fastfeed(t, ctx, bin, "replay", capture, "--max", "--dump-books", dump, "--stats-out", stats)
	st = readJSON(t, stats)
	if code != 0 || st["auth_failures"] != 2.0 || st["instruments"] != 3.0 || !strings.Contains(log, "mcast-key="+keyFile) {
		t.Errorf("replay without --mcast-key of a capture recorded with it: exit %d, stats %v\n%s", code, st, log)
	}
	// With the key file gone, the sealed datagrams do not decode, and replay says why.
	if err := os.Rename(keyFile, keyFile+".gone"); err != nil {
		t.Fatal(err)
	}
	code, _, log = fastfeed(t, ctx, bin, "replay", capture, "--max", "--dump-books", dump, "--stats-out", stats)
	st = readJSON(t, stats)
	if !strings.Contains(log, "the capture was recorded with --mcast-key: give --mcast-key FILE") || !strings.Contains(log, "not there any more") {
		t.Errorf("replay with the recorded key file gone does not say so:\n%s", log)
	}
	if code != 0 || st["decode_errors"] == 0.0 || st["messages"] != 0.0 || st["instruments"] != 1.0 || !strings.Contains(log, "17 bytes after the") {
		t.Errorf("replay of a sealed capture without the key: exit %d, stats %v\n%s", code, st, log)
	}
}

// TestMcastKeyErrors: a key file that is missing, too short or neither hex nor raw
// stops every command that takes --mcast-key, naming the file and what is wrong.
func TestMcastKeyErrors(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := writeKeyFile(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pub", "--count", "1", "--mcast-key", short}, 1, short + ": 16 hex digits: want at least 64"},
		{[]string{"feed", "--topics", "SBER", "--duration", "1ms", "--mcast-key", short}, 1, short + ": 16 hex digits"},
		{[]string{"replay", "fixtures/feed.pcap", "--max", "--mcast-key", short}, 1, short + ": 16 hex digits"},
		{[]string{"record", "--out", filepath.Join(dir, "x"), "--all", "--duration", "1ms", "--mcast-key", short}, 1, short + ": 16 hex digits"},
		{[]string{"feed", "--topics", "SBER", "--duration", "1ms", "--mcast-key", filepath.Join(dir, "none")}, 1, "none: no such file"},
		{[]string{"replay", "fixtures/feed.pcap", "--to-multicast", "--mcast-key", good}, 2, "--to-multicast sends them on as captured"},
	} {
		code, _, stderr := fastfeed(t, ctx, bin, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("fastfeed %s: exit %d, want %d, with %q in:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, stderr)
		}
	}
}
