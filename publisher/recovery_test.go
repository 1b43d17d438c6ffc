package publisher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/netns"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// inbox files the messages a test client receives by MDReqID.
type inbox struct {
	mu     sync.Mutex
	byReq  map[string][]*quickfix.Message
	others []*quickfix.Message // answers without MDReqID: BusinessMessageRejects
}

func (b *inbox) file(msg *quickfix.Message) {
	id, _ := msg.Body.GetString(tag.MDReqID)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byReq == nil {
		b.byReq = map[string][]*quickfix.Message{}
	}
	if id == "" {
		b.others = append(b.others, msg)
	} else {
		b.byReq[id] = append(b.byReq[id], msg)
	}
}

func (b *inbox) answers(id string) []*quickfix.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*quickfix.Message(nil), b.byReq[id]...)
}

func (b *inbox) businessRejects() []*quickfix.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*quickfix.Message(nil), b.others...)
}

// fixClient is a well-behaved recovery client: a fixsession initiator.
type fixClient struct {
	inbox
	ini     *fixsession.Initiator
	logons  chan struct{}
	logouts chan string
}

func startClient(t *testing.T, addr, compID, password string) *fixClient {
	t.Helper()
	c := &fixClient{logons: make(chan struct{}, 4), logouts: make(chan string, 4)}
	ini, err := fixsession.NewInitiator(fixsession.InitiatorConfig{
		Connect: addr, SenderCompID: compID, TargetCompID: fixsession.RecoveryCompID,
		Username: "demo", Password: password, ReconnectInterval: time.Minute,
	}, fixsession.HandlerFuncs{
		Logon:  func(quickfix.SessionID) { c.logons <- struct{}{} },
		Logout: func(_ quickfix.SessionID, reason string) { c.logouts <- reason },
		Message: func(_ quickfix.SessionID, msg *quickfix.Message) error {
			c.file(msg)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ini.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ini.Stop)
	c.ini = ini
	return c
}

func (c *fixClient) waitLogon(t *testing.T) {
	t.Helper()
	select {
	case <-c.logons:
	case reason := <-c.logouts:
		t.Fatalf("%v: logged out: %q", c.ini.SessionID(), reason)
	case <-time.After(10 * time.Second):
		t.Fatalf("%v: no logon", c.ini.SessionID())
	}
}

func (c *fixClient) send(t *testing.T, msg *quickfix.Message) {
	t.Helper()
	if err := c.ini.Send(msg); err != nil {
		t.Fatal(err)
	}
}

// rawClient is a misbehaving client on a bare TCP connection: it logs on,
// then writes whatever it is given at once, without waiting for answers,
// and never answers the session's heartbeats or test requests.
type rawClient struct {
	inbox
	conn   net.Conn
	compID string
	seq    int
	logon  chan struct{}
	done   chan struct{}
}

func dialRaw(t *testing.T, addr, compID string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{conn: conn, compID: compID, logon: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		conn.Close()
		<-c.done
	})
	go c.read()
	logon := quickfix.NewMessage()
	logon.Header.SetString(tag.MsgType, "A")
	logon.Body.SetInt(tag.EncryptMethod, 0)
	logon.Body.SetInt(tag.HeartBtInt, 30)
	logon.Body.SetString(tag.ResetSeqNumFlag, "Y")
	logon.Body.SetString(tag.DefaultApplVerID, fixsession.DefaultApplVerID)
	logon.Body.SetString(tag.Username, "demo")
	logon.Body.SetString(tag.Password, "demo")
	c.write(t, logon)
	select {
	case <-c.logon:
	case <-time.After(10 * time.Second):
		t.Fatal("raw client: no logon")
	}
	return c
}

// frame fills in msg's header and returns its bytes.
func (c *rawClient) frame(msg *quickfix.Message) []byte {
	c.seq++
	msg.Header.SetString(tag.BeginString, fixsession.BeginString)
	msg.Header.SetString(tag.SenderCompID, c.compID)
	msg.Header.SetString(tag.TargetCompID, fixsession.RecoveryCompID)
	msg.Header.SetInt(tag.MsgSeqNum, c.seq)
	msg.Header.SetField(tag.SendingTime, quickfix.FIXUTCTimestamp{Time: time.Now().UTC()})
	return msg.Bytes()
}

// write writes msgs in one write.
func (c *rawClient) write(t *testing.T, msgs ...*quickfix.Message) {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		b = append(b, c.frame(m)...)
	}
	if _, err := c.conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (c *rawClient) read() {
	defer close(c.done)
	var buf []byte
	chunk := make([]byte, 64<<10)
	loggedOn := false
	for {
		n, err := c.conn.Read(chunk)
		if err != nil {
			return
		}
		buf = append(buf, chunk[:n]...)
		for {
			i := bytes.Index(buf, []byte("\x0110="))
			if i < 0 || len(buf) < i+8 {
				break
			}
			msg, err := md.ParseFIX(buf[:i+8])
			buf = buf[i+8:]
			if err != nil {
				continue
			}
			switch {
			case msg.IsMsgTypeOf("A"):
				if !loggedOn {
					loggedOn = true
					close(c.logon)
				}
			case msg.IsMsgTypeOf("0"), msg.IsMsgTypeOf("1"):
			default:
				c.file(msg)
			}
		}
	}
}

type answerer interface {
	answers(id string) []*quickfix.Message
}

// awaitRetransmit waits for the answer to a retransmission of n messages: n
// messages or a reject.
func awaitRetransmit(t *testing.T, c answerer, id string, n int) []*quickfix.Message {
	t.Helper()
	var msgs []*quickfix.Message
	waitFor(t, "the answer to "+id, func() bool {
		msgs = c.answers(id)
		_, rejected := rejectOf(t, msgs)
		return rejected || len(msgs) >= n
	})
	return msgs
}

func awaitSnapshot(t *testing.T, c answerer, id string) []*quickfix.Message {
	t.Helper()
	var msgs []*quickfix.Message
	waitFor(t, "the snapshot answer to "+id, func() bool {
		msgs = c.answers(id)
		return snapshotComplete(t, msgs)
	})
	return msgs
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reject returns the request's MarketDataRequestReject, if any.
func rejectOf(t *testing.T, msgs []*quickfix.Message) (md.MarketDataReject, bool) {
	t.Helper()
	for _, m := range msgs {
		if m.IsMsgTypeOf(md.MsgTypeMarketDataRequestReject) {
			rej, err := md.MarketDataRejectFromFIX(m)
			if err != nil {
				t.Fatal(err)
			}
			return rej, true
		}
	}
	return md.MarketDataReject{}, false
}

// snapshotComplete reports whether msgs hold a whole snapshot answer (every W
// its TotNumReports announces) or a reject.
func snapshotComplete(t *testing.T, msgs []*quickfix.Message) bool {
	t.Helper()
	if _, rejected := rejectOf(t, msgs); rejected {
		return true
	}
	if len(msgs) == 0 {
		return false
	}
	tot, err := msgs[0].Body.GetInt(tag.TotNumReports)
	if err != nil {
		t.Fatalf("W without TotNumReports: %v", err)
	}
	return len(msgs) >= tot
}

// wantReject checks that msgs are exactly one reject with reason and a text
// containing text.
func wantReject(t *testing.T, what string, msgs []*quickfix.Message, reason byte, text string) {
	t.Helper()
	rej, ok := rejectOf(t, msgs)
	switch {
	case !ok:
		t.Errorf("%s: no reject, %d messages", what, len(msgs))
	case len(msgs) != 1:
		t.Errorf("%s: %d messages besides the reject", what, len(msgs)-1)
	case rej.Reason != reason || !strings.Contains(rej.Text, text):
		t.Errorf("%s: reject reason %q text %q, want %q and %q", what, rej.Reason, rej.Text, reason, text)
	}
}

// retransmissionToFAST checks a retransmitted message's application fields
// and returns its FAST encoding.
func retransmissionToFAST(t *testing.T, c *md.Codec, msg *quickfix.Message, reqID, channel string, seq uint32) []byte {
	t.Helper()
	kind, err := md.KindOfFIX(msg)
	if err != nil {
		t.Fatal(err)
	}
	var appl md.ApplFields
	var out []byte
	switch kind {
	case md.KindIncremental:
		var m md.Incremental
		if appl, err = md.IncrementalFromFIX(msg, &m); err == nil {
			out, err = c.AppendIncremental(nil, &m)
		}
	case md.KindDefinition:
		var m md.Definition
		if appl, err = md.DefinitionFromFIX(msg, &m); err == nil {
			appl.ApplID = channel // d carries the channel of its instrument
			out, err = c.AppendDefinition(nil, &m)
		}
	case md.KindStatus:
		var m md.Status
		if appl, err = md.StatusFromFIX(msg, &m); err == nil {
			out, err = c.AppendStatus(nil, &m)
		}
	default:
		t.Fatalf("retransmitted a %v", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := (md.ApplFields{ApplID: channel, ApplSeqNum: seq, ApplResendFlag: true, MDReqID: reqID}); appl != want {
		t.Errorf("retransmitted %v: application fields %+v, want %+v", kind, appl, want)
	}
	return out
}

func newRequest(id string, mut func(r *md.MarketDataRequest)) *quickfix.Message {
	r := md.MarketDataRequest{MDReqID: id, SubscriptionType: md.SubscriptionSnapshot}
	if mut != nil {
		mut(&r)
	}
	return r.ToFIX()
}

func startService(t *testing.T, p *Publisher, opts RecoveryOptions) *RecoveryService {
	t.Helper()
	svc, err := NewRecoveryService(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	return svc
}

// TestRecoveryService runs a publisher on loopback multicast with its
// recovery service and checks, against what was multicast: snapshots taken
// during the data, rebuilt to the final books with the later incrementals;
// retransmissions, message for message; the refusals; a request storm and
// malformed requests, which get rejects while the multicast goes on; and a
// wrong password.
func TestRecoveryService(t *testing.T) {
	netns.Require(t)
	const maxRetransmit = 500
	p := newPublisher(t, Config{
		Instruments:         generate(t, 40),
		Mapping:             mustMapping(t, "239.192.0.1", 2), // two busy channels of about 20 instruments
		Rate:                1000,
		Count:               20000, // a bound: the test stops the data long before
		Seed:                3,
		Heartbeat:           50 * time.Millisecond,
		DefinitionsInterval: 300 * time.Millisecond,
		Retention:           800,
		MaxRetransmit:       maxRetransmit,
		Recovery:            RecoveryConfig{Listen: "127.0.0.1:0", Users: []User{{"demo", "demo"}}},
	})
	rx := newReceiver(t, p)
	svc := startService(t, p, RecoveryOptions{MaxPending: 4})
	good := startClient(t, svc.Addr(), "T-GOOD", "demo")
	bad := startClient(t, svc.Addr(), "T-BAD", "wrong")
	storm := dialRaw(t, svc.Addr(), "T-STORM")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	select {
	case reason := <-bad.logouts:
		if reason != "unknown username or password" {
			t.Errorf("wrong password: logout %q", reason)
		}
	case <-bad.logons:
		t.Error("logged on with a wrong password")
	case <-time.After(10 * time.Second):
		t.Error("wrong password: no logout")
	}
	good.waitLogon(t)
	waitFor(t, "500 incrementals", func() bool { return p.Stats().Incrementals >= 500 })

	var chA, chB string
	for _, ci := range p.Channels() {
		switch {
		case ci.Definitions:
		case chA == "":
			chA = ci.Name
		default:
			chB = ci.Name
		}
	}
	if chB == "" {
		t.Fatalf("channels %+v: want two instrument channels", p.Channels())
	}

	// A whole-channel snapshot during the data, and one by symbols.
	good.send(t, newRequest("snapA", func(r *md.MarketDataRequest) { r.ApplID = chA }))
	symsB := channelSymbols(p, chB)
	good.send(t, newRequest("snapB", func(r *md.MarketDataRequest) { r.Symbols = []string{symsB[2], symsB[0]} }))
	good.send(t, newRequest("unknown-symbol", func(r *md.MarketDataRequest) { r.Symbols = []string{symsB[0], "NOSUCH"} }))
	snapA := awaitSnapshot(t, good, "snapA")
	snapB := awaitSnapshot(t, good, "snapB")
	wantReject(t, "unknown symbol", awaitSnapshot(t, good, "unknown-symbol"), md.RejectUnknownSymbol, "NOSUCH")
	mid := checkSnapshots(t, "snapA", snapA, chA, channelSymbols(p, chA))
	checkSnapshots(t, "snapB", snapB, chB, []string{symsB[2], symsB[0]})

	// The storm: requests written at once, and malformed ones, during the data.
	before := p.Stats().Datagrams
	const stormN = 100
	var burst []*quickfix.Message
	for i := range stormN {
		// Each for other symbols: the same ones again would replace the one queued.
		a, b := i%len(symsB), (i%len(symsB)+1+i/len(symsB))%len(symsB)
		burst = append(burst, newRequest(fmt.Sprint("storm", i), func(r *md.MarketDataRequest) { r.Symbols = []string{symsB[a], symsB[b]} }))
	}
	malformed := []struct {
		name   string
		msg    func() *quickfix.Message
		reason byte
		text   string
	}{
		{"bad-263", func() *quickfix.Message {
			m := newRequest("bad-263", nil)
			m.Body.SetString(tag.SubscriptionRequestType, "7")
			return m
		}, md.RejectUnsupportedSubscriptionRequestType, "SubscriptionRequestType"},
		{"subscribe", func() *quickfix.Message {
			return newRequest("subscribe", func(r *md.MarketDataRequest) {
				r.SubscriptionType = md.SubscriptionSubscribe
				r.ApplID = chA
			})
		}, md.RejectUnsupportedSubscriptionRequestType, "SubscriptionRequestType 0"},
		{"depth", func() *quickfix.Message {
			return newRequest("depth", func(r *md.MarketDataRequest) { r.ApplID = chA; r.MarketDepth = 5 })
		}, md.RejectUnsupportedMarketDepth, "MarketDepth"},
		{"no-scope", func() *quickfix.Message { return newRequest("no-scope", nil) }, md.RejectUnsupportedScope, "ApplID"},
		{"no-channel", func() *quickfix.Message {
			return newRequest("no-channel", func(r *md.MarketDataRequest) { r.BegSeqNum, r.EndSeqNum = 1, 2 })
		}, md.RejectUnsupportedScope, "ApplID"},
		{"bad-count", func() *quickfix.Message {
			m := newRequest("bad-count", func(r *md.MarketDataRequest) { r.Symbols = []string{symsB[0]} })
			m.Body.SetInt(tag.NoRelatedSym, 3)
			return m
		}, 0, "tag 146"},
		{"bad-seq", func() *quickfix.Message {
			m := newRequest("bad-seq", func(r *md.MarketDataRequest) { r.ApplID = chA })
			m.Body.SetString(tag.ApplBegSeqNum, "-1")
			return m
		}, 0, "tag 1182"},
	}
	for _, m := range malformed {
		burst = append(burst, m.msg())
	}
	noID := newRequest("x", func(r *md.MarketDataRequest) { r.ApplID = chA })
	noID.Body.Remove(tag.MDReqID)
	order := quickfix.NewMessage()
	order.Header.SetString(tag.MsgType, "D")
	order.Body.SetString(tag.ClOrdID, "1")
	storm.write(t, append(burst, noID, order)...)

	busy, served := 0, 0
	for i := range stormN {
		msgs := awaitSnapshot(t, storm, fmt.Sprint("storm", i))
		if rej, ok := rejectOf(t, msgs); ok {
			if rej.Reason != md.RejectInsufficientBandwidth || !strings.Contains(rej.Text, "too many requests pending") {
				t.Errorf("storm%d: reject %+v", i, rej)
			}
			busy++
			continue
		}
		served++
	}
	after := p.Stats().Datagrams
	for _, m := range malformed {
		wantReject(t, m.name, awaitRetransmit(t, storm, m.name, 1), m.reason, m.text)
	}
	var brs []*quickfix.Message
	waitFor(t, "two BusinessMessageRejects", func() bool { brs = storm.businessRejects(); return len(brs) >= 2 })
	for i, want := range []string{"malformed MarketDataRequest", "unsupported MsgType"} {
		text, _ := brs[i].Body.GetString(tag.Text)
		if !brs[i].IsMsgTypeOf("j") || !strings.Contains(text, want) {
			t.Errorf("BusinessMessageReject %d: %v, text %q, want %q", i, brs[i], text, want)
		}
	}
	t.Logf("storm: %d requests served, %d refused as busy; %d datagrams multicast meanwhile", served, busy, after-before)
	if busy == 0 || served == 0 {
		t.Errorf("storm of %d requests with MaxPending 4: %d served, %d busy; want both", stormN, served, busy)
	}
	if after <= before {
		t.Errorf("the multicast stalled during the storm: %d datagrams before, %d after", before, after)
	}
	if st := svc.Stats(); st.Busy != uint64(busy) || st.BusinessRejects != 2 || st.Logons != 2 {
		t.Errorf("stats %+v: want %d busy, 2 business rejects, 2 logons", st, busy)
	}

	// Stop the data, then check everything against what was multicast.
	waitFor(t, "1500 incrementals", func() bool { return p.Stats().Incrementals >= 1500 }) // evicted the first numbers
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the deferred wait
	got := rx.finish(t)
	r := checkFeed(t, p, got, channelSymbols(p, chA)...)
	var dump bytes.Buffer
	if err := p.WriteDump(&dump); err != nil {
		t.Fatal(err)
	}
	final := readDumpFile(t, dump.Bytes())

	for _, s := range mid {
		sym := string(s.Symbol)
		b := snapshotBook(t, p, &s)
		in := p.cfg.Instruments[p.bySymbol[sym]]
		for _, ea := range r.entries[sym] {
			if ea.seq <= s.LastMsgSeqNumProcessed {
				continue
			}
			u, err := toUpdate(&ea.e, in.PriceExp, in.SizeExp)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Apply(u); err != nil {
				t.Fatalf("%s: snapshot + entry %d: %v", sym, ea.e.RptSeq, err)
			}
			b.SetRptSeq(int64(ea.e.RptSeq))
		}
		line, _ := final.Lookup(sym)
		if d := book.DiffDumps(book.Dump{book.DumpOf(sym, b)}, book.Dump{line}); d != "" {
			t.Errorf("%s: snapshot at %d + the later incrementals differs from the final book:\n%s", sym, s.LastMsgSeqNumProcessed, d)
		}
	}

	// Retransmissions, served from the final state.
	codec := newCodec(t)
	defs := p.Channels()[len(p.Channels())-1].Name
	lastA, lastDefs := r.lastSeq[chA], r.lastSeq[defs]
	ranges := []struct {
		id       string
		ch       string
		beg, end uint32
	}{
		{"rtA", chA, lastA - 199, lastA},
		{"rtDefs", defs, lastDefs - 9, lastDefs},
	}
	for _, rg := range ranges {
		good.send(t, newRequest(rg.id, func(r *md.MarketDataRequest) { r.ApplID, r.BegSeqNum, r.EndSeqNum = rg.ch, rg.beg, rg.end }))
	}
	refusals := []struct {
		id       string
		ch       string
		beg, end uint32
		reason   byte
		text     string
	}{
		{"old", chA, 1, 10, md.RejectUnsupportedScope, "beyond the retention window"},
		{"future", chA, lastA, lastA + 1, md.RejectUnsupportedScope, fmt.Sprintf("the last sequence number sent is %d", lastA)},
		{"large", chA, lastA - maxRetransmit, lastA, md.RejectInsufficientBandwidth, "the limit is 500"},
		{"nochannel", "G1.2.3.4:5", 1, 2, md.RejectUnknownSymbol, "unknown channel"},
		{"inverted", chA, lastA, lastA - 1, md.RejectUnsupportedScope, "invalid range"},
	}
	for _, rg := range ranges {
		n := int(rg.end - rg.beg + 1)
		msgs := awaitRetransmit(t, good, rg.id, n)
		if rej, ok := rejectOf(t, msgs); ok {
			t.Fatalf("%s: %+v", rg.id, rej)
		}
		if len(msgs) != n {
			t.Fatalf("%s: %d messages, want %d", rg.id, len(msgs), n)
		}
		for i, msg := range msgs {
			seq := rg.beg + uint32(i)
			fastMsg := retransmissionToFAST(t, codec, msg, rg.id, rg.ch, seq)
			if want := r.sequenced[rg.ch][seq-1][4:]; !bytes.Equal(fastMsg, want) {
				t.Errorf("%s: message %d differs from the datagram multicast:\n got %x\nwant %x", rg.id, seq, fastMsg, want)
			}
		}
	}
	for _, rf := range refusals { // one by one: the session may have 4 requests pending
		good.send(t, newRequest(rf.id, func(r *md.MarketDataRequest) { r.ApplID, r.BegSeqNum, r.EndSeqNum = rf.ch, rf.beg, rf.end }))
		wantReject(t, rf.id, awaitRetransmit(t, good, rf.id, 1), rf.reason, rf.text)
	}
	if t.Failed() {
		t.Log(rx.drops(t))
	}
}

// checkSnapshots checks a snapshot answer: one W per symbol, in order, with
// the request's fields and one LastMsgSeqNumProcessed, and returns them.
func checkSnapshots(t *testing.T, id string, msgs []*quickfix.Message, channel string, symbols []string) []md.Snapshot {
	t.Helper()
	if rej, ok := rejectOf(t, msgs); ok {
		t.Fatalf("%s: %+v", id, rej)
	}
	if len(msgs) != len(symbols) {
		t.Fatalf("%s: %d snapshots, want %d", id, len(msgs), len(symbols))
	}
	var out []md.Snapshot
	for i, msg := range msgs {
		var s md.Snapshot
		appl, err := md.SnapshotFromFIX(msg, &s)
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Symbol) != symbols[i] || appl.MDReqID != id || appl.ApplID != channel || len(s.Entries) == 0 || s.RptSeq == 0 {
			t.Errorf("%s: snapshot %d of %s: %+v, %d entries, RptSeq %d", id, i, s.Symbol, appl, len(s.Entries), s.RptSeq)
		}
		if s.LastMsgSeqNumProcessed != out0(out, s).LastMsgSeqNumProcessed {
			t.Errorf("%s: %s at %d, %s at %d: one request, one channel, two sequence numbers",
				id, s.Symbol, s.LastMsgSeqNumProcessed, out[0].Symbol, out[0].LastMsgSeqNumProcessed)
		}
		out = append(out, s)
	}
	return out
}

func out0(out []md.Snapshot, s md.Snapshot) md.Snapshot {
	if len(out) == 0 {
		return s
	}
	return out[0]
}

// TestRollForward brings snapshots taken at different sequence numbers of a
// channel to one, and compares them with the books replayed to that number.
// TestRecoveryDedup: a client that asks again for the same snapshots while its first
// request still waits its turn adds no work: the new request replaces the one queued,
// which is answered once, under the last MDReqID; nothing is refused as busy.
func TestRecoveryDedup(t *testing.T) {
	netns.Require(t)
	p := newPublisher(t, Config{
		Instruments: generate(t, 40),
		Mapping:     mustMapping(t, "239.192.0.1", 2),
		Rate:        1000,
		Count:       20000,
		Seed:        5,
		Heartbeat:   50 * time.Millisecond,
		Recovery:    RecoveryConfig{Listen: "127.0.0.1:0", Users: []User{{"demo", "demo"}}},
	})
	newReceiver(t, p)
	svc := startService(t, p, RecoveryOptions{MaxPending: 4})
	c := dialRaw(t, svc.Addr(), "T-DEDUP")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "200 incrementals", func() bool { return p.Stats().Incrementals >= 200 })
	var chs []string
	for _, ci := range p.Channels() {
		if !ci.Definitions {
			chs = append(chs, ci.Name)
		}
	}
	syms := channelSymbols(p, chs[1])
	// Requests ahead of the duplicates.
	var burst []*quickfix.Message
	for i := range 3 {
		burst = append(burst, newRequest(fmt.Sprint("ahead", i), func(r *md.MarketDataRequest) { r.Symbols = syms[2+4*i : 6+4*i] }))
	}
	const dups = 10
	for i := range dups {
		burst = append(burst, newRequest(fmt.Sprint("dup", i), func(r *md.MarketDataRequest) {
			r.Symbols = []string{syms[i%2], syms[1-i%2]} // the same two, in either order
		}))
	}
	// The test holds the only turn until every request has come: the worker takes the
	// first and waits for the turn, the others wait in the queue.
	if err := svc.turns.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	c.write(t, burst...)
	waitFor(t, "every request", func() bool { return svc.Stats().Requests == uint64(len(burst)) })
	svc.turns.release()
	for i := range 3 {
		checkSnapshots(t, fmt.Sprint("ahead", i), awaitSnapshot(t, c, fmt.Sprint("ahead", i)), chs[1], syms[2+4*i:6+4*i])
	}
	last := fmt.Sprint("dup", dups-1)
	checkSnapshots(t, last, awaitSnapshot(t, c, last), chs[1], []string{syms[1], syms[0]})
	// A request after them all is answered after them: nothing more comes for the
	// replaced ones meanwhile.
	c.write(t, newRequest("after", func(r *md.MarketDataRequest) { r.Symbols = syms[:1] }))
	awaitSnapshot(t, c, "after")
	for i := range dups - 1 {
		if msgs := c.answers(fmt.Sprint("dup", i)); len(msgs) != 0 {
			t.Errorf("dup%d, replaced, was answered: %v", i, msgs)
		}
	}
	if st := svc.Stats(); st.Replaced != dups-1 || st.Busy != 0 || st.Snapshots != 3*4+2+1 {
		t.Errorf("stats %+v: want %d replaced, none busy, %d snapshots", st, dups-1, 3*4+2+1)
	}
}

func TestRollForward(t *testing.T) {
	p := newPublisher(t, Config{Instruments: generate(t, 6), Mapping: mustMapping(t, "239.192.0.1", 1), Count: 400, Seed: 9})
	r := checkFeed(t, p, runCaptured(t, p))
	ch := p.Channels()[0].Name
	dgs := r.sequenced[ch]
	if len(dgs) < 300 {
		t.Fatalf("%d datagrams", len(dgs))
	}
	// snapshotsAt replays the channel to seq and snapshots every instrument.
	c := newCodec(t)
	snapshotsAt := func(seq uint32) map[string]md.Snapshot {
		books := map[string]*book.MBP{}
		rpt := map[string]uint32{}
		for _, in := range p.cfg.Instruments {
			b, err := book.NewMBP(book.Config{PriceExp: int(in.PriceExp), SizeExp: int(in.SizeExp)})
			if err != nil {
				t.Fatal(err)
			}
			books[in.Symbol] = b
		}
		for _, d := range dgs[:seq] {
			_, kind, err := DecodeDatagram(c, d)
			if err != nil {
				t.Fatal(err)
			}
			if kind != md.KindIncremental {
				continue
			}
			for _, e := range c.Incremental.Entries {
				sym := string(e.Symbol)
				in := p.cfg.Instruments[p.bySymbol[sym]]
				u, err := toUpdate(&e, in.PriceExp, in.SizeExp)
				if err != nil {
					t.Fatal(err)
				}
				if err := books[sym].Apply(u); err != nil {
					t.Fatal(err)
				}
				rpt[sym] = e.RptSeq
			}
		}
		out := map[string]md.Snapshot{}
		for sym, b := range books {
			in := p.cfg.Instruments[p.bySymbol[sym]]
			s := md.Snapshot{LastMsgSeqNumProcessed: seq, Symbol: []byte(sym), RptSeq: rpt[sym]}
			for _, side := range [2]book.Side{book.Bid, book.Ask} {
				for j := range b.Depth(side) {
					l := b.At(side, j)
					s.Entries = append(s.Entries, md.Entry{Type: mdbook.SideType(side), Price: md.Dec(l.Price, in.PriceExp),
						Size: md.Dec(l.Size, in.SizeExp), Orders: uint32(l.Orders)})
				}
			}
			out[sym] = s
		}
		return out
	}
	exps := map[string][2]int8{}
	for _, in := range p.cfg.Instruments {
		exps[in.Symbol] = [2]int8{in.PriceExp, in.SizeExp}
	}
	const hi = 290
	want := snapshotsAt(hi)
	var snaps []*md.Snapshot
	for i, in := range p.cfg.Instruments {
		seq := uint32(40 + 50*i) // 40, 90, ... 290: the last one already there
		s := snapshotsAt(seq)[in.Symbol]
		snaps = append(snaps, &s)
	}
	lookup := func(sym string) ([2]int8, bool) { e, ok := exps[sym]; return e, ok }
	moved, err := rollForward(c, snaps, 41, dgs[40:hi], lookup)
	if err != nil {
		t.Fatal(err)
	}
	if moved != len(snaps)-1 {
		t.Errorf("moved %d snapshots, want %d", moved, len(snaps)-1)
	}
	for _, s := range snaps {
		w := want[string(s.Symbol)]
		if s.LastMsgSeqNumProcessed != hi || s.RptSeq != w.RptSeq || fmt.Sprint(s.Entries) != fmt.Sprint(w.Entries) {
			t.Errorf("%s: rolled forward to %d, RptSeq %d, %d levels; want %d, RptSeq %d, %d levels",
				s.Symbol, s.LastMsgSeqNumProcessed, s.RptSeq, len(s.Entries), hi, w.RptSeq, len(w.Entries))
		}
	}

	// A hole in the datagrams, a symbol of another publisher.
	s := snapshotsAt(100)[p.cfg.Instruments[0].Symbol]
	if _, err := rollForward(c, []*md.Snapshot{&s}, 101, append(append([][]byte{}, dgs[100:110]...), dgs[111:120]...), lookup); err == nil ||
		!strings.Contains(err.Error(), "where 111 was expected") {
		t.Errorf("hole: %v", err)
	}
	other := md.Snapshot{Symbol: []byte("NOSUCH"), LastMsgSeqNumProcessed: 100}
	if _, err := rollForward(c, []*md.Snapshot{&other}, 101, dgs[100:110], lookup); err == nil {
		t.Error("unknown symbol rolled forward")
	}
}

func TestRecoveryServiceErrors(t *testing.T) {
	p := newPublisher(t, Config{Instruments: generate(t, 2), Recovery: RecoveryConfig{Listen: "127.0.0.1:0"}})
	for _, tc := range []struct {
		p    *Publisher
		opts RecoveryOptions
		want string
	}{
		{nil, RecoveryOptions{}, "nil Publisher"},
		{p, RecoveryOptions{MaxPending: -1}, "MaxPending"},
		{p, RecoveryOptions{Timeout: -time.Second}, "Timeout"},
		{p, RecoveryOptions{Listen: "nowhere"}, "Listen"},
	} {
		if _, err := NewRecoveryService(tc.p, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewRecoveryService(%+v): %v, want %q", tc.opts, err, tc.want)
		}
	}
	svc, err := NewRecoveryService(p, RecoveryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Stop()
	if err := svc.Start(context.Background()); err == nil {
		t.Error("Start after Stop succeeded")
	}
	for _, tc := range []struct {
		err  error
		want byte
	}{
		{&RangeError{Err: ErrUnknownChannel}, md.RejectUnknownSymbol},
		{fmt.Errorf("x: %w", ErrUnknownSymbol), md.RejectUnknownSymbol},
		{&RangeError{Err: ErrBeyondRetention}, md.RejectUnsupportedScope},
		{&RangeError{Err: ErrInvalidRange}, md.RejectUnsupportedScope},
		{&RangeError{Err: ErrRangeTooLarge}, md.RejectInsufficientBandwidth},
		{ErrNotRunning, md.RejectInsufficientBandwidth},
		{context.DeadlineExceeded, md.RejectInsufficientBandwidth},
		{errors.New("other"), md.RejectInsufficientBandwidth},
	} {
		if got := rejectReason(tc.err); got != tc.want {
			t.Errorf("rejectReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// FuzzParseRequest feeds arbitrary FIX messages to the request check: each gets exactly
// one outcome, and what it accepts is servable.
func FuzzParseRequest(f *testing.F) {
	for _, r := range []md.MarketDataRequest{
		{MDReqID: "r1", ApplID: "G239.0.0.2:30001", BegSeqNum: 5, EndSeqNum: 9},
		{MDReqID: "r2", ApplID: "G239.0.0.2:30001"},
		{MDReqID: "r3", Symbols: []string{"SBER", "GAZP"}},
		{MDReqID: "r4", SubscriptionType: md.SubscriptionSubscribe, Symbols: []string{"SB*"}},
		{MDReqID: "r5", BegSeqNum: 1},
		{MDReqID: "r6", Symbols: []string{"A", "B", "C", "D"}},
	} {
		f.Add(r.ToFIX().Bytes())
	}
	f.Add([]byte("8=FIXT.1.1\x019=20\x0135=V\x01262=x\x01263=7\x0110=000\x01"))
	f.Add([]byte("8=FIXT.1.1\x019=12\x0135=D\x0111=1\x0110=000\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := md.ParseFIX(b)
		if err != nil {
			return
		}
		req, rej, err := parseRequest(msg, 3)
		switch {
		case err != nil:
			if rej != nil {
				t.Fatalf("both an error %v and a reject %+v", err, rej)
			}
		case rej != nil:
			if rej.MDReqID == "" || rej.Text == "" {
				t.Fatalf("reject %+v without MDReqID or Text", rej)
			}
			if _, err := md.MarketDataRejectFromFIX(rej.ToFIX()); err != nil {
				t.Fatalf("reject %+v does not read back: %v", rej, err)
			}
		default:
			retransmit := req.BegSeqNum != 0 || req.EndSeqNum != 0
			switch {
			case req.MDReqID == "":
				t.Fatalf("accepted %+v without MDReqID", req)
			case req.SubscriptionType != 0 && req.SubscriptionType != md.SubscriptionSnapshot:
				t.Fatalf("accepted SubscriptionRequestType %q", req.SubscriptionType)
			case retransmit && req.ApplID == "":
				t.Fatalf("accepted a retransmission without ApplID: %+v", req)
			case !retransmit && (req.ApplID == "" && len(req.Symbols) == 0 || len(req.Symbols) > 3 || req.MarketDepth != 0):
				t.Fatalf("accepted snapshot request %+v", req)
			}
		}
	})
}

// A publisher with its FIX recovery service on the configured address.
func ExampleRecoveryService() {
	ts, err := fast.LoadFile("fixtures/templates.xml")
	if err != nil {
		log.Fatal(err)
	}
	ins, err := GenerateInstruments(10)
	if err != nil {
		log.Fatal(err)
	}
	p, err := New(Config{Instruments: ins, Templates: ts, Rate: 1000, Duration: time.Minute,
		Recovery: RecoveryConfig{Users: []User{{Username: "demo", Password: "demo"}}}})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := NewRecoveryService(p, RecoveryOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil { // 127.0.0.1:9870, CompID FFPUB by default
		log.Fatal(err)
	}
	defer svc.Stop()
	if err := p.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
