package fixrecovery

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fastfeed/internal/passhash"
	"fastfeed/internal/testcerts"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/gap"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/netns"
	"fastfeed/mcast"
	"fastfeed/md"
	"fastfeed/publisher"
)

// The publisher of the tests multicasts: the test binary runs in a private network
// namespace.
func TestMain(m *testing.M) { netns.RunTests(m) }

func loadTemplates(t *testing.T) *fast.Templates {
	t.Helper()
	ts, err := fast.LoadFile(filepath.Join("..", "..", "fixtures", "templates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// result is one Sink call.
type result struct {
	retransmitted bool
	snapshots     bool
	failed        bool

	channel  string
	seq      uint32
	data     []byte
	snaps    []md.Snapshot
	snapshot bool
	reason   string
}

func (r result) String() string {
	switch {
	case r.retransmitted:
		return fmt.Sprintf("Retransmitted(%s, %d)", r.channel, r.seq)
	case r.snapshots:
		return fmt.Sprintf("Snapshots(%s, %d)", r.channel, len(r.snaps))
	}
	return fmt.Sprintf("Failed(%s, %v, %q)", r.channel, r.snapshot, r.reason)
}

// testSink records the Sink calls.
type testSink struct {
	mu    sync.Mutex
	got   []result
	codec *md.Codec
}

func (s *testSink) add(r result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, r)
}

// Retransmitted records the message encoded to FAST again, so that a test can compare
// it with the datagram the publisher sent.
func (s *testSink) Retransmitted(channel string, seq uint32, m *md.Message) {
	s.mu.Lock()
	if s.codec == nil {
		ts, err := fast.LoadFile(filepath.Join("..", "..", "fixtures", "templates.xml"))
		if err == nil {
			s.codec, err = md.NewCodec(ts)
		}
		if err != nil {
			panic(err)
		}
	}
	var b []byte
	var err error
	switch m.Kind {
	case md.KindIncremental:
		b, err = s.codec.AppendIncremental(nil, &m.Incremental)
	case md.KindDefinition:
		b, err = s.codec.AppendDefinition(nil, &m.Definition)
	case md.KindStatus:
		b, err = s.codec.AppendStatus(nil, &m.Status)
	default:
		err = fmt.Errorf("kind %v", m.Kind)
	}
	s.mu.Unlock()
	if err != nil {
		b = []byte(err.Error())
	}
	s.add(result{retransmitted: true, channel: channel, seq: seq, data: b})
}

func (s *testSink) Snapshots(channel string, snaps []md.Snapshot) {
	s.add(result{snapshots: true, channel: channel, snaps: snaps})
}

func (s *testSink) Failed(channel string, snapshot bool, reason string) {
	s.add(result{failed: true, channel: channel, snapshot: snapshot, reason: reason})
}

// of returns the results of channel.
func (s *testSink) of(channel string) []result {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []result
	for _, r := range s.got {
		if r.channel == channel {
			out = append(out, r)
		}
	}
	return out
}

// await waits until channel has n results and returns them.
func (s *testSink) await(t *testing.T, channel string, n int) []result {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := s.of(channel)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d results, want %d: %v", channel, len(got), n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantFailed(t *testing.T, what string, got []result, snapshot bool, reason string) {
	t.Helper()
	if len(got) != 1 || !got[0].failed || got[0].snapshot != snapshot || !strings.Contains(got[0].reason, reason) {
		t.Errorf("%s: %v, want one Failed(snapshot %v) with %q", what, got, snapshot, reason)
	}
}

func startClient(t *testing.T, cfg Config, sink *testSink) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Start(sink)
	t.Cleanup(c.Close)
	return c
}

// TestAgainstPublisher runs a publisher and its recovery service and checks what the
// client delivers against the publisher's retained datagrams and snapshots.
func TestAgainstPublisher(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	ts := loadTemplates(t)
	ins, err := publisher.GenerateInstruments(8)
	if err != nil {
		t.Fatal(err)
	}
	mapping, err := mcast.NewMapping(netip.MustParseAddr("239.192.0.1"), 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := publisher.New(publisher.Config{
		Instruments: ins, Templates: ts, Mapping: mapping, Rate: 2000, Count: 1500, Seed: 7,
		Retention: 1000, MaxRetransmit: 200, Linger: time.Minute, DefinitionsInterval: 100 * time.Millisecond,
		Recovery: publisher.RecoveryConfig{Listen: "127.0.0.1:0", Users: []publisher.User{{Username: "feed", Password: "secret"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	svc, err := publisher.NewRecoveryService(p, publisher.RecoveryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()

	// The books and the retention do not change after DataDone: every answer below is
	// compared with the publisher's final state, so the client starts only then (it used to
	// start before, and on a loaded machine logged on and was answered mid-stream).
	<-p.DataDone()
	sink := &testSink{}
	c := startClient(t, Config{Connect: svc.Addr(), SenderCompID: "FIXREC-PUB", Username: "feed", Password: "secret", Templates: ts}, sink)
	var chA, chB, defs string
	for _, ci := range p.Channels() {
		switch {
		case ci.Definitions:
			defs = ci.Name
		case chA == "":
			chA = ci.Name
		default:
			chB = ci.Name
		}
	}
	if chB == "" {
		t.Fatalf("channels %+v: want two instrument channels", p.Channels())
	}
	var symsB []string
	for _, ci := range p.Channels() {
		if ci.Name == chB {
			symsB = ci.Instruments
		}
	}

	// Asked right after the start, most likely before the logon: it waits for it.
	c.Snapshot(chB, []string{symsB[1], symsB[0], symsB[1]})
	if c.LoggedOn() {
		t.Log("logged on before the first request: it did not have to wait")
	}
	got := sink.await(t, chB, 1)
	want, err := p.Snapshot(ctx, chB, []string{symsB[1], symsB[0]})
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshots(t, "by symbols, before the logon", got, want)

	// Retransmissions, compared with the retained datagrams.
	last := func(ch string) uint32 { // the last number sent, from a refusal
		_, err := p.Retransmit(ctx, ch, 1<<31, 1<<31)
		var re *publisher.RangeError
		if !errors.As(err, &re) || !errors.Is(err, publisher.ErrBeyondRetention) {
			t.Fatalf("%s: %v", ch, err)
		}
		return re.Last
	}
	lastA, lastDefs := last(chA), last(defs)
	for _, rg := range []struct {
		ch       string
		beg, end uint32
	}{{chA, lastA - 149, lastA}, {defs, lastDefs - 4, lastDefs}} {
		c.Retransmit(rg.ch, rg.beg, rg.end)
		n := int(rg.end - rg.beg + 1)
		got := sink.await(t, rg.ch, n)
		ref, err := p.Retransmit(ctx, rg.ch, rg.beg, rg.end)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range got {
			seq := rg.beg + uint32(i)
			if !r.retransmitted || r.seq != seq || !bytes.Equal(r.data, ref[i][4:]) {
				t.Fatalf("%s %d..%d: result %d is %v, want Retransmitted(%d) with the datagram's bytes", rg.ch, rg.beg, rg.end, i, r, seq)
			}
		}
	}

	// Refusals.
	c.Retransmit(chA, 1, 10)
	c.Retransmit(chA, lastA-300, lastA)
	c.Retransmit(chA, 9, 8)
	c.Snapshot(chB, []string{"NOSUCH"})
	got = sink.await(t, chA, 150+3)[150:]
	for _, reason := range []string{"MDReqRejReason A): publisher: retransmit " + chA + " 1..10: range beyond the retention window",
		"MDReqRejReason 2): publisher: retransmit " + chA, "the limit is 200", "invalid range 9..8"} {
		var match []result
		for _, r := range got {
			if strings.Contains(r.reason, reason) {
				match = append(match, r)
			}
		}
		wantFailed(t, reason, match, false, reason)
	}
	wantFailed(t, "unknown symbol", sink.await(t, chB, 2)[1:], true, "NOSUCH")

	// A whole channel.
	c.Snapshot(chB, nil)
	want, err = p.Snapshot(ctx, chB, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshots(t, "whole channel", sink.await(t, chB, 3)[2:], want)
}

func checkSnapshots(t *testing.T, what string, got []result, want []md.Snapshot) {
	t.Helper()
	if len(got) != 1 || !got[0].snapshots {
		t.Fatalf("%s: %v, want one Snapshots", what, got)
	}
	snaps := got[0].snaps
	if len(snaps) != len(want) {
		t.Fatalf("%s: %d snapshots, want %d", what, len(snaps), len(want))
	}
	for i := range want {
		g, w := snaps[i], want[i]
		g.SendingTime, w.SendingTime = 0, 0
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s: snapshot %d:\n got %+v\nwant %+v", what, i, g, w)
		}
	}
}

// stub is a recovery service that answers by the channel asked for:
//
//	ok:      the range, as incrementals of SBER
//	drop:    the first three numbers of the range, then a Logout
//	silent:  nothing
//	skew:    snapshots of the symbols at different sequence numbers
//	bad:     a snapshot without RptSeq
//	snap:    snapshots of the symbols at sequence number 7
type stub struct {
	acc   *fixsession.Acceptor
	mu    sync.Mutex
	drops int
	late  map[string][]string // channel "late...": the MDReqIDs of the snapshot requests
}

// lateRequests returns the MDReqIDs of the requests the stub had for channel.
func (s *stub) lateRequests(channel string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.late[channel])
}

// answerLate answers the first request for channel, a "late..." one, with snapshots of
// its symbols under its MDReqID.
func (s *stub) answerLate(id quickfix.SessionID, channel string, symbols []string) error {
	first := s.lateRequests(channel)[0]
	for _, sym := range symbols {
		w := md.SnapshotToFIX(stubSnapshot(sym, 9), md.ApplFields{ApplID: channel, MDReqID: first})
		w.Body.SetInt(tag.TotNumReports, len(symbols))
		if err := s.acc.Send(id, w); err != nil {
			return err
		}
	}
	return nil
}

func startStub(t *testing.T) *stub {
	t.Helper()
	s := &stub{}
	acc, err := fixsession.NewAcceptor(fixsession.AcceptorConfig{Listen: "127.0.0.1:0", CompID: fixsession.RecoveryCompID,
		Credentials: fixsession.StaticCredentials("demo", "demo")}, fixsession.HandlerFuncs{Message: s.serve})
	if err != nil {
		t.Fatal(err)
	}
	s.acc = acc
	if err := acc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(acc.Stop)
	return s
}

// stubIncremental is what the stub sends as message seq.
func stubIncremental(seq uint32) *md.Incremental {
	return &md.Incremental{Header: md.Header{SeqNum: seq, SendingTime: 1700000000123456789 + int64(seq)},
		Entries: []md.Entry{{Action: md.New, Type: md.Bid, Symbol: []byte("SBER"), RptSeq: seq,
			Price: md.Dec(28000+int64(seq), -2), Size: md.Dec(10, 0), Orders: 1}}}
}

func stubSnapshot(sym string, last uint32) *md.Snapshot {
	return &md.Snapshot{LastMsgSeqNumProcessed: last, Symbol: []byte(sym), RptSeq: 3,
		Entries: []md.Entry{{Type: md.Offer, Price: md.Dec(101, 0), Size: md.Dec(5, 0)}}}
}

func (s *stub) serve(id quickfix.SessionID, msg *quickfix.Message) error {
	req, err := md.MarketDataRequestFromFIX(msg)
	if err != nil {
		return err
	}
	appl := md.ApplFields{ApplID: req.ApplID, ApplResendFlag: true, MDReqID: req.MDReqID}
	switch req.ApplID {
	case "late", "late-revived":
		// Silent: the test answers when it likes (answerLate).
		s.mu.Lock()
		if s.late == nil {
			s.late = map[string][]string{}
		}
		s.late[req.ApplID] = append(s.late[req.ApplID], req.MDReqID)
		s.mu.Unlock()
	case "ok", "drop":
		end := req.EndSeqNum
		if req.ApplID == "drop" {
			end = req.BegSeqNum + 2
		}
		for seq := req.BegSeqNum; seq <= end; seq++ {
			if err := s.acc.Send(id, md.IncrementalToFIX(stubIncremental(seq), appl)); err != nil {
				return err
			}
		}
		if req.ApplID == "drop" {
			s.mu.Lock()
			s.drops++
			s.mu.Unlock()
			return s.acc.Logout(id, "going down")
		}
	case "skew", "bad", "snap":
		for i, sym := range req.Symbols {
			last := uint32(7)
			if req.ApplID == "skew" {
				last += uint32(i)
			}
			w := md.SnapshotToFIX(stubSnapshot(sym, last), md.ApplFields{ApplID: req.ApplID, MDReqID: req.MDReqID})
			w.Body.SetInt(tag.TotNumReports, len(req.Symbols))
			if req.ApplID == "bad" {
				w.Body.Remove(tag.RptSeq)
			}
			if err := s.acc.Send(id, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestStub checks the client's side of the protocol against a scripted service:
// conversion of the answers, timeouts, a session lost in the middle of a replay and
// the reconnection, malformed and inconsistent answers, a wrong password, and the bound
// on requests waiting for a logon.
func TestStub(t *testing.T) {
	t.Parallel()
	ts := loadTemplates(t)
	st := startStub(t)
	codec, err := md.NewCodec(ts)
	if err != nil {
		t.Fatal(err)
	}

	// Every client starts now, so that the logons, which take a second or two, overlap.
	sink := &testSink{}
	c := startClient(t, Config{Connect: st.acc.Addr(), SenderCompID: "FIXREC-STUB", Username: "demo", Password: "demo",
		Templates: ts, ReconnectInterval: 50 * time.Millisecond}, sink)
	silentSink := &testSink{}
	silent := startClient(t, Config{Connect: st.acc.Addr(), SenderCompID: "FIXREC-SILENT", Username: "demo", Password: "demo",
		Templates: ts, Timeout: 300 * time.Millisecond}, silentSink)
	badSink := &testSink{}
	bad := startClient(t, Config{Connect: st.acc.Addr(), SenderCompID: "FIXREC-BADPW", Username: "demo", Password: "nope",
		Templates: ts, ReconnectInterval: time.Minute}, badSink)
	bad.Retransmit("ok", 1, 1)
	queueSink := &testSink{}
	// Nothing listens on port 1: this client never logs on.
	queue := startClient(t, Config{Connect: "127.0.0.1:1", SenderCompID: "FIXREC-NOWHERE", Templates: ts,
		Timeout: 200 * time.Millisecond, MaxQueued: 2}, queueSink)
	for range 3 {
		queue.Retransmit("q", 1, 1)
	}

	t.Run("session", func(t *testing.T) {
		c.Retransmit("ok", 5, 9)
		got := sink.await(t, "ok", 5)
		for i, r := range got {
			want, err := codec.AppendIncremental(nil, stubIncremental(uint32(5+i)))
			if err != nil {
				t.Fatal(err)
			}
			if !r.retransmitted || r.seq != uint32(5+i) || !bytes.Equal(r.data, want) {
				t.Errorf("ok: result %d: %v %x, want Retransmitted(%d) %x", i, r, r.data, 5+i, want)
			}
		}

		c.Snapshot("skew", []string{"A", "B"})
		if got := sink.await(t, "skew", 1); !got[0].snapshots || len(got[0].snaps) != 2 ||
			got[0].snaps[0].LastMsgSeqNumProcessed != 7 || got[0].snaps[1].LastMsgSeqNumProcessed != 8 {
			t.Errorf("skew: %v, want the snapshots as sent, at 7 and 8", got)
		}
		c.Snapshot("bad", []string{"A"})
		wantFailed(t, "bad", sink.await(t, "bad", 1), true, "malformed answer")
		c.Snapshot("snap", []string{"B", "A"})
		got = sink.await(t, "snap", 1)
		if len(got) != 1 || !got[0].snapshots || len(got[0].snaps) != 2 || string(got[0].snaps[0].Symbol) != "B" ||
			string(got[0].snaps[1].Symbol) != "A" || got[0].snaps[1].LastMsgSeqNumProcessed != 7 || got[0].snaps[1].RptSeq != 3 {
			t.Errorf("snap: %v", got)
		}

		// The session drops in the middle of a replay: what came is delivered, the rest
		// (23..30) is asked again at the next logon; the stub drops that session too after
		// three messages, and the request fails. The client reconnects and serves the next
		// request.
		c.Retransmit("drop", 20, 30)
		got = sink.await(t, "drop", 7)
		for i, r := range got[:6] {
			if !r.retransmitted || r.seq != uint32(20+i) {
				t.Errorf("drop: result %d: %v", i, r)
			}
		}
		wantFailed(t, "drop", got[6:], false, "recovery session lost: going down")
		c.Retransmit("ok", 1, 1) // waits for the new logon
		if got := sink.await(t, "ok", 6)[5:]; !got[0].retransmitted || got[0].seq != 1 {
			t.Errorf("after the reconnection: %v", got)
		}
	})

	t.Run("silent", func(t *testing.T) {
		for deadline := time.Now().Add(10 * time.Second); !silent.LoggedOn(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no logon")
			}
		}
		silent.Retransmit("silent", 1, 2)
		wantFailed(t, "silent", silentSink.await(t, "silent", 1), false, "no answer from the recovery service for 300ms")
	})

	t.Run("wrong password", func(t *testing.T) {
		wantFailed(t, "wrong password", badSink.await(t, "ok", 1), false, "refused the logon: unknown username or password")
	})

	t.Run("queue bound", func(t *testing.T) {
		got := queueSink.await(t, "q", 3)
		full, waited := 0, 0
		for _, r := range got {
			switch {
			case r.failed && (strings.Contains(r.reason, "already wait") || strings.Contains(r.reason, "too many")):
				full++
			case r.failed && strings.Contains(r.reason, "not logged on"):
				waited++
			}
		}
		if full != 1 || waited != 2 {
			t.Errorf("3 requests with MaxQueued 2 and no session: %v", got)
		}
	})
}

// TestLateAnswer: a snapshot request that times out is failed, so that the handler may
// ask again; a Snapshot for the same channel and symbols while one is unanswered joins
// it (nothing sent while it is in time, sent again under a new MDReqID once it timed
// out); and an answer that comes late, under the first MDReqID after a newer one was
// sent, is delivered, once for the joined requests.
func TestLateAnswer(t *testing.T) {
	t.Parallel()
	st := startStub(t)
	sink := &testSink{}
	c := startClient(t, Config{Connect: st.acc.Addr(), SenderCompID: "FIXREC-LATE", Username: "demo", Password: "demo",
		Timeout: 300 * time.Millisecond}, sink)
	for deadline := time.Now().Add(10 * time.Second); !c.LoggedOn(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no logon")
		}
	}
	id := quickfix.SessionID{BeginString: quickfix.BeginStringFIXT11, SenderCompID: fixsession.RecoveryCompID, TargetCompID: "FIXREC-LATE"}
	syms := []string{"A", "B"}

	// Timed out, then answered: Failed, then the Snapshots all the same.
	c.Snapshot("late", syms)
	c.Snapshot("late", []string{"B", "A"}) // in time: joins without a request of its own
	wantFailed(t, "late", sink.await(t, "late", 1), true, "no answer from the recovery service for 300ms")
	if got := st.lateRequests("late"); len(got) != 1 {
		t.Fatalf("late: the service got %v, want one request (the second joined it)", got)
	}
	if err := st.answerLate(id, "late", syms); err != nil {
		t.Fatal(err)
	}
	if got := sink.await(t, "late", 2)[1:]; len(got) != 1 || !got[0].snapshots || len(got[0].snaps) != 2 ||
		got[0].snaps[0].LastMsgSeqNumProcessed != 9 {
		t.Errorf("late: %v, want the late Snapshots", got)
	}

	// Timed out, asked again (a new MDReqID), then answered under the first one.
	c.Snapshot("late-revived", syms)
	wantFailed(t, "late-revived", sink.await(t, "late-revived", 1), true, "no answer")
	c.Snapshot("late-revived", syms)
	for deadline := time.Now().Add(10 * time.Second); len(st.lateRequests("late-revived")) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request timed out was not sent again")
		}
	}
	if err := st.answerLate(id, "late-revived", syms); err != nil {
		t.Fatal(err)
	}
	if got := sink.await(t, "late-revived", 2)[1:]; len(got) != 1 || !got[0].snapshots || len(got[0].snaps) != 2 {
		t.Errorf("late-revived: %v, want the Snapshots answering the first request", got)
	}
	time.Sleep(400 * time.Millisecond) // long enough for the joined request to time out, were it still pending
	if got := sink.of("late-revived"); len(got) != 2 {
		t.Errorf("late-revived: %v, want one outcome for the joined requests after the Failed", got)
	}
	if got, want := c.Stats(), (Stats{SnapshotRequests: 3, Joined: 2, LateAnswers: 2}); got != want {
		t.Errorf("Stats %+v, want %+v", got, want)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	ts := loadTemplates(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Templates: ts, Timeout: -1}, "Timeout"},
		{Config{Templates: ts, MaxQueued: -1}, "MaxQueued"},
		{Config{Templates: ts, Connect: "nowhere"}, "Connect"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// Two clients with the same CompIDs in one process: the second fails its requests.
	sink := &testSink{}
	startClient(t, Config{Connect: "127.0.0.1:1", SenderCompID: "FIXREC-DUP", Templates: ts}, &testSink{})
	c := startClient(t, Config{Connect: "127.0.0.1:1", SenderCompID: "FIXREC-DUP", Templates: ts}, sink)
	c.Snapshot("x", []string{"A"})
	wantFailed(t, "duplicate session", sink.await(t, "x", 1), true, "Duplicate SessionID")
}

// TestHandlerEndToEnd runs a publisher with its recovery service and a handler whose
// recovery is a Client, and checks that the handler's books end equal to the publisher's:
// with 5% of the datagrams lost on purpose (recovered by retransmission), and with a
// handler that joins in the middle of the data (recovered by snapshots).
func TestHandlerEndToEnd(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	t.Run("loss", func(t *testing.T) {
		t.Parallel()
		st := runEndToEnd(t, 30101, false)
		if st.InjectedLoss == 0 || st.RecoveredFIX == 0 {
			t.Errorf("stats %+v: want losses recovered over FIX", st)
		}
	})
	t.Run("late join", func(t *testing.T) {
		t.Parallel()
		st := runEndToEnd(t, 30201, true)
		if st.SnapshotsDone == 0 {
			t.Errorf("stats %+v: want snapshots applied", st)
		}
	})
	t.Run("TLS", func(t *testing.T) { // client certificate required, the password stored hashed
		t.Parallel()
		certs, err := testcerts.New(t.TempDir(), "rec")
		if err != nil {
			t.Fatal(err)
		}
		srv, err := fixsession.ServerTLS(certs.ServerCert, certs.ServerKey, certs.CA)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := fixsession.LoadClientTLS(certs.CA, certs.ClientCert, certs.ClientKey, "")
		if err != nil {
			t.Fatal(err)
		}
		hash, err := passhash.Hash([]byte("demo"))
		if err != nil {
			t.Fatal(err)
		}
		var fix fixsession.AcceptorStats
		st := runEndToEnd(t, 30301, false, func(o *e2eOptions) {
			o.serverTLS, o.clientTLS, o.password, o.fix = srv, cli, hash, &fix
		})
		if st.InjectedLoss == 0 || st.RecoveredFIX == 0 {
			t.Errorf("stats %+v: want losses recovered over FIX over TLS", st)
		}
		if fix.TLSFailures != 0 || fix.TLSRefused != 0 || fix.LogonsRefused != 0 || fix.Connections == 0 {
			t.Errorf("recovery service %+v: want TLS connections and no refusal", fix)
		}
	})
}

// e2eOptions vary runEndToEnd: the recovery service's TLS, the client's, the stored
// password, and where to put the service's counters at the end.
type e2eOptions struct {
	serverTLS *tls.Config
	clientTLS *fixsession.ClientTLS
	password  string
	fix       *fixsession.AcceptorStats
}

func runEndToEnd(t *testing.T, port uint16, lateJoin bool, opts ...func(*e2eOptions)) feed.Stats {
	o := e2eOptions{password: "demo"}
	for _, f := range opts {
		f(&o)
	}
	ts := loadTemplates(t)
	ins, err := publisher.GenerateInstruments(6)
	if err != nil {
		t.Fatal(err)
	}
	mapping, err := mcast.NewMapping(netip.MustParseAddr("239.192.0.1"), 4)
	if err != nil {
		t.Fatal(err)
	}
	p, err := publisher.New(publisher.Config{
		Instruments: ins, Templates: ts, Mapping: mapping, Port: port, Rate: 3000, Count: 3000, Seed: 5,
		Linger: time.Minute, Heartbeat: 50 * time.Millisecond,
		Recovery: publisher.RecoveryConfig{Listen: "127.0.0.1:0", Users: []publisher.User{{Username: "demo", Password: o.password}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := publisher.NewRecoveryService(p, publisher.RecoveryOptions{TLS: o.serverTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	c, err := New(Config{Connect: svc.Addr(), SenderCompID: fmt.Sprint("FIXREC-E2E-", port), Username: "demo", Password: "demo", Templates: ts,
		TLS: o.clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pdone := make(chan error, 1)
	if lateJoin {
		go func() { pdone <- p.Run(ctx) }()
		for p.Stats().Incrementals < 1000 {
			time.Sleep(time.Millisecond)
		}
	}
	var topics []string
	for _, in := range ins {
		topics = append(topics, in.Symbol)
	}
	cfg := feed.Config{Topics: topics, Mapping: mapping, Port: port, Templates: ts, Recovery: c,
		Gap: gap.Config{GapWait: 2 * time.Millisecond}}
	if !lateJoin {
		cfg.Inject = feed.Inject{Loss: 0.05, Seed: 3}
	}
	h, err := feed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hdone := make(chan error, 1)
	go func() { hdone <- h.Run(ctx) }()
	if !lateJoin {
		for deadline := time.Now().Add(10 * time.Second); !c.LoggedOn(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the client did not log on")
			}
		}
		go func() { pdone <- p.Run(ctx) }()
	}
	<-p.DataDone()
	var buf bytes.Buffer
	if err := p.WriteDump(&buf); err != nil {
		t.Fatal(err)
	}
	want, err := book.ReadDump(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var got book.Dump
	var st feed.Stats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := h.Do(ctx, func() { got, st = h.Dump(), h.Stats() }); err != nil {
			t.Fatal(err)
		}
		if book.DiffDumps(got, want) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the handler's books differ from the publisher's:\n%s\nstats %+v", book.DiffDumps(got, want), st)
		}
	}
	t.Logf("lost %d, recovered over FIX %d, snapshots applied %d, recovery failures %d",
		st.InjectedLoss, st.RecoveredFIX, st.SnapshotsDone, st.RecoveryFails)
	if o.fix != nil {
		*o.fix = svc.Stats().FIX
	}
	cancel()
	if err := <-hdone; err != nil && !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
	if err := <-pdone; err != nil {
		t.Error(err)
	}
	return st
}

// FuzzParseAnswer feeds arbitrary FIX messages to the answer reader: it never panics,
// and what it takes as an answer has an MDReqID and a kind the client knows.
func FuzzParseAnswer(f *testing.F) {
	appl := md.ApplFields{ApplID: "ok", ApplSeqNum: 3, ApplResendFlag: true, MDReqID: "R1"}
	w := md.SnapshotToFIX(stubSnapshot("SBER", 7), appl)
	w.Body.SetInt(tag.TotNumReports, 2)
	for _, m := range []*quickfix.Message{
		md.IncrementalToFIX(stubIncremental(3), appl),
		w,
		md.StatusToFIX(&md.Status{Symbol: []byte("SBER"), TradingStatus: 17}, appl),
		md.DefinitionToFIX(&md.Definition{Symbol: []byte("SBER"), PriceExp: -2, Channel: []byte("G239.0.0.2:30001")}, appl),
		md.MarketDataReject{MDReqID: "R2", Reason: md.RejectUnknownSymbol, Text: "no"}.ToFIX(),
	} {
		f.Add(m.Bytes())
	}
	f.Add([]byte("8=FIXT.1.1\x019=20\x0135=W\x01262=R1\x01911=-1\x0110=000\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := md.ParseFIX(b)
		if err != nil {
			return
		}
		ev, ok := parseAnswer(msg)
		if !ok {
			return
		}
		if ev.reqID == "" || !strings.ContainsRune("XdfWY", rune(ev.kind)) {
			t.Fatalf("answer %q of kind %q", ev.reqID, ev.kind)
		}
		if ev.err == nil && ev.kind == 'W' && (ev.total < 0 || len(ev.snap.Symbol) == 0) {
			t.Fatalf("snapshot answer %+v", ev.snap)
		}
	})
}
