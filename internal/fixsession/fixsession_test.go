package fixsession

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastfeed/md"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"
)

// The tests run over TCP on 127.0.0.1 only. quickfix v0.9.7 delays every session's start
// to the next whole second, so each logon takes one to two seconds: the tests run in
// parallel, each with its own acceptor and CompIDs, and TestMain checks for leaked
// goroutines once they have all stopped.

func TestMain(m *testing.M) {
	before, _ := goroutines()
	code := m.Run()
	if code == 0 {
		if err := settle(before, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// knownLeak reports whether goroutine stack g is the signal handler `go test -fuzz`
// starts, or one quickfix v0.9.7 leaves blocked forever, after its session has ended:
//   - the logon and logout timers (time.AfterFunc) send to the session's unbuffered event
//     channel even after the session loop has ended (upstream: quickfixgo/quickfix pull
//     request 742);
//   - a connection's reader that read one more message (typically the counterparty's
//     Logout crossing ours) after the session stopped reading blocks sending it, since
//     readLoop does not watch for the session's end;
//   - an initiator stopped while it asks its session whether it is in session time
//     leaves the asking goroutine blocked on the session's admin channel, which nobody
//     reads any more (session.waitForInSessionTime).
func knownLeak(g string) bool {
	header, _, _ := strings.Cut(g, "\n")
	return strings.Contains(g, "os/signal.signal_recv") || // the fuzzing engine's signal handler, not the code under test
		strings.Contains(g, "quickfix.(*stateMachine).Connect.func1") ||
		strings.Contains(g, "quickfix.(*session).initiateLogoutInReplyTo.func1") ||
		strings.Contains(g, "quickfix.(*session).waitForInSessionTime(") ||
		strings.Contains(header, "[chan send") && strings.Contains(g, "quickfix.readLoop(")
}

// goroutines counts live goroutines other than the known quickfix leaks, and returns
// their stacks.
func goroutines() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var live []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if knownLeak(g) {
			continue
		}
		n++
		live = append(live, g)
	}
	return n, strings.Join(live, "\n\n")
}

func settle(want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, stacks := goroutines()
		if n <= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaked goroutines: %d before the tests, %d after:\n%s", want, n, stacks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type logout struct {
	id     quickfix.SessionID
	reason string
}

type received struct {
	id  quickfix.SessionID
	msg *quickfix.Message
}

// recorder is a Handler that records events on channels, dropping what no test reads.
type recorder struct {
	logons  chan quickfix.SessionID
	logouts chan logout
	msgs    chan received
}

func newRecorder() *recorder {
	return &recorder{
		logons:  make(chan quickfix.SessionID, 16),
		logouts: make(chan logout, 16),
		msgs:    make(chan received, 16),
	}
}

func (r *recorder) OnLogon(id quickfix.SessionID) {
	select {
	case r.logons <- id:
	default:
	}
}

func (r *recorder) OnLogout(id quickfix.SessionID, reason string) {
	select {
	case r.logouts <- logout{id, reason}:
	default:
	}
}

func (r *recorder) OnMessage(id quickfix.SessionID, msg *quickfix.Message) error {
	select {
	case r.msgs <- received{id, msg}:
	default:
	}
	return nil
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

// stop calls stop and fails the test if it hangs.
func stop(t *testing.T, what string, stop func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Stop hangs", what)
	}
}

func startAcceptor(t *testing.T, ctx context.Context, h Handler) *Acceptor {
	t.Helper()
	a, err := NewAcceptor(AcceptorConfig{
		Listen:      "127.0.0.1:0",
		CompID:      RecoveryCompID,
		Credentials: StaticCredentials(DemoUsername, DemoPassword),
		HeartBtInt:  5 * time.Second,
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if host, port, err := net.SplitHostPort(a.Addr()); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q", a.Addr())
	}
	t.Cleanup(a.Stop)
	return a
}

func startInitiator(t *testing.T, ctx context.Context, cfg InitiatorConfig, h Handler) *Initiator {
	t.Helper()
	if cfg.TargetCompID == "" {
		cfg.TargetCompID = RecoveryCompID
	}
	i, err := NewInitiator(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(i.Stop)
	return i
}

func TestSessionMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, cli := newRecorder(), newRecorder()
	acc := startAcceptor(t, ctx, srv)
	var log lockedBuffer
	ini := startInitiator(t, ctx, InitiatorConfig{Connect: acc.Addr(), SenderCompID: "HANDLER1",
		Username: DemoUsername, Password: DemoPassword,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}, cli)

	id := wait(t, srv.logons, "acceptor logon")
	if want := (quickfix.SessionID{BeginString: "FIXT.1.1", SenderCompID: RecoveryCompID, TargetCompID: "HANDLER1"}); id != want {
		t.Errorf("acceptor session %v, want %v", id, want)
	}
	if got := wait(t, cli.logons, "initiator logon"); got != ini.SessionID() {
		t.Errorf("initiator session %v, want %v", got, ini.SessionID())
	}
	if !ini.LoggedOn() || !slices.Contains(acc.Sessions(), id) {
		t.Errorf("LoggedOn %v, Sessions %v", ini.LoggedOn(), acc.Sessions())
	}

	// The Logon on the wire: FIXT.1.1, DefaultApplVerID 9, the credentials, the password
	// hidden in the log.
	logged := log.String()
	for _, want := range []string{"8=FIXT.1.1|", "|35=A|", "|1137=9|", "|553=demo|", "|554=***|", "fix logon"} {
		if !strings.Contains(logged, want) {
			t.Errorf("initiator log lacks %q:\n%s", want, logged)
		}
	}
	if strings.Contains(logged, "554=demo") {
		t.Errorf("initiator log shows the password:\n%s", logged)
	}

	// Initiator to acceptor: a retransmission request.
	req := md.MarketDataRequest{MDReqID: "rtx-1", SubscriptionType: md.SubscriptionSnapshot,
		ApplID: "G239.1.2.3:5000", BegSeqNum: 10, EndSeqNum: 12}
	if err := ini.Send(req.ToFIX()); err != nil {
		t.Fatal(err)
	}
	in := wait(t, srv.msgs, "request at the acceptor")
	if in.id != id {
		t.Errorf("request on session %v, want %v", in.id, id)
	}
	if v, _ := in.msg.Header.GetString(1128); v != "" {
		t.Errorf("ApplVerID %q on the wire: the session default (1137=9) should apply", v)
	}
	gotReq, err := md.MarketDataRequestFromFIX(in.msg)
	if err != nil || !reflect.DeepEqual(gotReq, req) {
		t.Errorf("request %+v, %v; want %+v", gotReq, err, req)
	}

	// Acceptor to initiator: the retransmitted incremental, then a reject.
	sent := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC).UnixNano()
	inc := md.Incremental{Header: md.Header{SeqNum: 10, SendingTime: sent}, Entries: []md.Entry{
		{Action: md.New, Type: md.Bid, Symbol: []byte("SBER"), RptSeq: 4, Price: md.Dec(10125, -2), Size: md.Dec(300, 0), Orders: 3},
		{Action: md.Delete, Type: md.Offer, Symbol: []byte("SBER"), RptSeq: 5, ID: []byte("ORD-9"), Price: md.Dec(-5, -1)},
	}}
	appl := md.ApplFields{ApplID: req.ApplID, ApplSeqNum: 10, ApplResendFlag: true, MDReqID: req.MDReqID}
	if err := acc.Send(id, md.IncrementalToFIX(&inc, appl)); err != nil {
		t.Fatal(err)
	}
	rej := md.MarketDataReject{MDReqID: "rtx-2", Reason: md.RejectUnsupportedScope, Text: "beyond the retention window"}
	if err := acc.Send(id, rej.ToFIX()); err != nil {
		t.Fatal(err)
	}
	out := wait(t, cli.msgs, "incremental at the initiator")
	var gotInc md.Incremental
	gotAppl, err := md.IncrementalFromFIX(out.msg, &gotInc)
	if err != nil || gotAppl != appl || !reflect.DeepEqual(gotInc, inc) {
		t.Errorf("incremental %+v %+v, %v;\nwant %+v %+v", gotInc, gotAppl, err, inc, appl)
	}
	out = wait(t, cli.msgs, "reject at the initiator")
	if gotRej, err := md.MarketDataRejectFromFIX(out.msg); err != nil || gotRej != rej {
		t.Errorf("reject %+v, %v; want %+v", gotRej, err, rej)
	}

	// A clean stop: the acceptor sees the logout, and nothing can be sent any more.
	stop(t, "initiator", ini.Stop)
	if lo := wait(t, srv.logouts, "acceptor logout"); lo.id != id {
		t.Errorf("logout of %v, want %v", lo.id, id)
	}
	if err := acc.Send(id, rej.ToFIX()); !errors.Is(err, ErrNotLoggedOn) {
		t.Errorf("Send after logout: %v, want ErrNotLoggedOn", err)
	}
	if err := ini.Send(req.ToFIX()); !errors.Is(err, ErrNotLoggedOn) {
		t.Errorf("initiator Send after Stop: %v, want ErrNotLoggedOn", err)
	}
	stop(t, "acceptor", acc.Stop)
	if _, err := net.DialTimeout("tcp", acc.Addr(), time.Second); err == nil {
		t.Errorf("acceptor still listening on %s after Stop", acc.Addr())
	}
}

func TestLogonRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := newRecorder()
	acc := startAcceptor(t, ctx, srv)
	tests := []struct {
		name   string
		cfg    InitiatorConfig
		reason string
	}{
		{"bad password", InitiatorConfig{SenderCompID: "BADPW", Username: DemoUsername, Password: "guess"}, reasonBadCredentials},
		{"unknown user", InitiatorConfig{SenderCompID: "BADUSER", Username: "root", Password: DemoPassword}, reasonBadCredentials},
		{"no credentials", InitiatorConfig{SenderCompID: "NOCRED"}, reasonNoCredentials},
		{"no password", InitiatorConfig{SenderCompID: "NOPW", Username: DemoUsername}, reasonNoCredentials},
		{"wrong TargetCompID", InitiatorConfig{SenderCompID: "LOST", TargetCompID: "FFPUB2", Username: DemoUsername, Password: DemoPassword},
			`unknown TargetCompID "FFPUB2"`},
	}
	clients := make([]*recorder, len(tests))
	for i, tt := range tests { // all at once: each logon takes a second or two
		tt.cfg.Connect = acc.Addr()
		tt.cfg.ReconnectInterval = time.Minute
		clients[i] = newRecorder()
		startInitiator(t, ctx, tt.cfg, clients[i])
	}
	for i, tt := range tests {
		lo := wait(t, clients[i].logouts, tt.name+": logout")
		if lo.reason != tt.reason {
			t.Errorf("%s: logout reason %q, want %q", tt.name, lo.reason, tt.reason)
		}
		select {
		case id := <-clients[i].logons:
			t.Errorf("%s: initiator logged on as %v", tt.name, id)
		default:
		}
	}
	select {
	case id := <-srv.logons:
		t.Errorf("acceptor logged on %v", id)
	default:
	}
	if s := acc.Sessions(); len(s) != 0 {
		t.Errorf("acceptor sessions %v", s)
	}
}

func TestAcceptorLogout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, cli := newRecorder(), newRecorder()
	acc := startAcceptor(t, ctx, srv)
	ini := startInitiator(t, ctx, InitiatorConfig{Connect: acc.Addr(), SenderCompID: "SLOWOMS",
		Username: DemoUsername, Password: DemoPassword, ReconnectInterval: time.Minute}, cli)
	id := wait(t, srv.logons, "acceptor logon")
	wait(t, cli.logons, "initiator logon")

	const reason = "slow consumer: queue overflow"
	if err := acc.Logout(id, reason); err != nil {
		t.Fatal(err)
	}
	if lo := wait(t, cli.logouts, "initiator logout"); lo.reason != reason || lo.id != ini.SessionID() {
		t.Errorf("initiator logout %+v, want reason %q", lo, reason)
	}
	if lo := wait(t, srv.logouts, "acceptor logout"); lo.id != id {
		t.Errorf("acceptor logout %+v", lo)
	}
	if ini.LoggedOn() {
		t.Error("initiator still logged on")
	}
	if err := acc.Logout(id, "again"); !errors.Is(err, ErrNotLoggedOn) {
		t.Errorf("second Logout: %v, want ErrNotLoggedOn", err)
	}
}

func TestStopByContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	srv, cli := newRecorder(), newRecorder()
	acc := startAcceptor(t, ctx, srv)
	ini := startInitiator(t, ctx, InitiatorConfig{Connect: acc.Addr(), SenderCompID: "CTXOMS",
		Username: DemoUsername, Password: DemoPassword}, cli)
	wait(t, srv.logons, "acceptor logon")
	wait(t, cli.logons, "initiator logon")

	cancel()
	wait(t, cli.logouts, "initiator logout")
	stop(t, "initiator", ini.Stop) // returns once the context's stop is done
	stop(t, "acceptor", acc.Stop)
	if _, err := net.DialTimeout("tcp", acc.Addr(), time.Second); err == nil {
		t.Errorf("acceptor still listening on %s", acc.Addr())
	}
	if err := acc.Start(context.Background()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

func TestStopBeforeStart(t *testing.T) {
	a, err := NewAcceptor(AcceptorConfig{Listen: "127.0.0.1:0", CompID: "X", Credentials: StaticCredentials("u", "p")}, HandlerFuncs{})
	if err != nil {
		t.Fatal(err)
	}
	a.Stop()
	a.Stop()
	if err := a.Start(context.Background()); err == nil {
		t.Error("Start after Stop succeeded")
	}
	i, err := NewInitiator(InitiatorConfig{Connect: "127.0.0.1:1", SenderCompID: "A", TargetCompID: "B"}, HandlerFuncs{})
	if err != nil {
		t.Fatal(err)
	}
	i.Stop()
	if err := i.Start(context.Background()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

func TestDuplicateInitiator(t *testing.T) {
	t.Parallel()
	// Nothing listens on 127.0.0.1:1: the first initiator keeps retrying until stopped.
	cfg := InitiatorConfig{Connect: "127.0.0.1:1", SenderCompID: "DUP", TargetCompID: "FFPUB"}
	first := startInitiator(t, context.Background(), cfg, HandlerFuncs{})
	second, err := NewInitiator(cfg, HandlerFuncs{})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "Duplicate SessionID") {
		t.Errorf("second Start: %v, want a duplicate session error", err)
	}
	stop(t, "first", first.Stop)
	// Once the first has stopped, the pair is free again; the failed second can start.
	if err := second.Start(context.Background()); err != nil {
		t.Fatalf("second Start after the first stopped: %v", err)
	}
	stop(t, "second", second.Stop)
}

func TestAcceptorPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := NewAcceptor(AcceptorConfig{Listen: l.Addr().String(), CompID: "INUSE", Credentials: StaticCredentials("u", "p")}, HandlerFuncs{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("Start on a busy port: %v", err)
	}
	a.Stop()
	// The failed start left nothing registered: the same CompID starts elsewhere.
	b := startAcceptor(t, context.Background(), HandlerFuncs{})
	b.Stop()
}

func TestConfigErrors(t *testing.T) {
	creds := StaticCredentials("u", "p")
	acceptors := []struct {
		cfg  AcceptorConfig
		h    Handler
		want string
	}{
		{AcceptorConfig{Listen: "127.0.0.1:0", CompID: "X", Credentials: creds}, nil, "nil Handler"},
		{AcceptorConfig{Listen: "127.0.0.1:0", Credentials: creds}, HandlerFuncs{}, "CompID required"},
		{AcceptorConfig{Listen: "127.0.0.1:0", CompID: "X"}, HandlerFuncs{}, "Credentials required"},
		{AcceptorConfig{Listen: "127.0.0.1", CompID: "X", Credentials: creds}, HandlerFuncs{}, "Listen"},
		{AcceptorConfig{Listen: "127.0.0.1:http", CompID: "X", Credentials: creds}, HandlerFuncs{}, "bad port"},
		{AcceptorConfig{Listen: "127.0.0.1:0", CompID: "X", Credentials: creds, HeartBtInt: -1}, HandlerFuncs{}, "negative HeartBtInt"},
	}
	for _, tt := range acceptors {
		if _, err := NewAcceptor(tt.cfg, tt.h); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewAcceptor(%+v): %v, want %q", tt.cfg, err, tt.want)
		}
	}
	initiators := []struct {
		cfg  InitiatorConfig
		want string
	}{
		{InitiatorConfig{Connect: "127.0.0.1:9870", TargetCompID: "T"}, "SenderCompID and TargetCompID required"},
		{InitiatorConfig{Connect: "127.0.0.1:9870", SenderCompID: "S"}, "SenderCompID and TargetCompID required"},
		{InitiatorConfig{Connect: "127.0.0.1:0", SenderCompID: "S", TargetCompID: "T"}, "bad Connect"},
		{InitiatorConfig{Connect: "localhost", SenderCompID: "S", TargetCompID: "T"}, "bad Connect"},
		{InitiatorConfig{Connect: "127.0.0.1:1", SenderCompID: "S", TargetCompID: "T", ReconnectInterval: -time.Second}, "negative duration"},
	}
	for _, tt := range initiators {
		if _, err := NewInitiator(tt.cfg, HandlerFuncs{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewInitiator(%+v): %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestStaticCredentials(t *testing.T) {
	ok := StaticCredentials("demo", "demo")
	for _, c := range []struct {
		u, p string
		want bool
	}{{"demo", "demo", true}, {"demo", "demo2", false}, {"dem", "demo", false}, {"", "", false}} {
		if got := ok(c.u, c.p); got != c.want {
			t.Errorf("(%q, %q) = %v", c.u, c.p, got)
		}
	}
}

func TestLogHelpers(t *testing.T) {
	logon := "8=FIXT.1.1\x019=10\x0135=A\x01553=demo\x01554=secret\x0198=0\x0110=000\x01"
	if got, want := string(printable([]byte(logon))), "8=FIXT.1.1|9=10|35=A|553=demo|554=***|98=0|10=000|"; got != want {
		t.Errorf("printable = %q, want %q", got, want)
	}
	if got := string(printable([]byte("x\x01554=secret"))); got != "x|554=***" {
		t.Errorf("printable at the end = %q", got)
	}
	for _, c := range []struct {
		in   string
		text string
		ok   bool
	}{
		{"8=FIXT.1.1\x019=5\x0135=5\x0134=2\x0158=go away\x0110=000\x01", "go away", true},
		{"8=FIXT.1.1\x019=5\x0135=5\x0134=2\x0110=000\x01", "", true},
		{"8=FIXT.1.1\x019=5\x0135=0\x0158=no\x0110=000\x01", "", false},
	} {
		if text, ok := logoutText([]byte(c.in)); text != c.text || ok != c.ok {
			t.Errorf("logoutText(%q) = %q %v", c.in, text, ok)
		}
	}
}

// A recovery service and its client, wired as the publisher and the handler do.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops both

	var acc *Acceptor
	acc, err := NewAcceptor(AcceptorConfig{
		Listen:      RecoveryListen,
		CompID:      RecoveryCompID,
		Credentials: StaticCredentials(DemoUsername, DemoPassword),
	}, HandlerFuncs{Message: func(id quickfix.SessionID, msg *quickfix.Message) error {
		req, err := md.MarketDataRequestFromFIX(msg)
		if err != nil {
			return err // answered with a BusinessMessageReject
		}
		rej := md.MarketDataReject{MDReqID: req.MDReqID, Reason: md.RejectUnsupportedScope, Text: "nothing retained"}
		return acc.Send(id, rej.ToFIX())
	}})
	if err != nil || acc.Start(ctx) != nil {
		return
	}

	var ini *Initiator
	ini, err = NewInitiator(InitiatorConfig{
		Connect:      RecoveryListen,
		SenderCompID: "HANDLER",
		TargetCompID: RecoveryCompID,
		Username:     DemoUsername,
		Password:     DemoPassword,
	}, HandlerFuncs{
		Logon: func(quickfix.SessionID) {
			req := md.MarketDataRequest{MDReqID: "r1", ApplID: "G239.1.2.3:5000", BegSeqNum: 10, EndSeqNum: 20}
			_ = ini.Send(req.ToFIX())
		},
		Message: func(id quickfix.SessionID, msg *quickfix.Message) error {
			rej, err := md.MarketDataRejectFromFIX(msg)
			fmt.Println(rej.Text, err)
			return nil
		},
	})
	if err != nil || ini.Start(ctx) != nil {
		return
	}
}

// TestAcceptorFlush sends a burst of application messages and checks that Flush returns
// once quickfix has handed every one to the connection (the client then receives them
// all), and that Flush on a session that has ended says so instead of waiting.
func TestAcceptorFlush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := newRecorder()
	var got atomic.Int64
	cli := HandlerFuncs{Message: func(quickfix.SessionID, *quickfix.Message) error { got.Add(1); return nil }}
	acc := startAcceptor(t, ctx, srv)
	startInitiator(t, ctx, InitiatorConfig{Connect: acc.Addr(), SenderCompID: "FLUSHER",
		Username: DemoUsername, Password: DemoPassword, ReconnectInterval: time.Minute}, cli)
	id := wait(t, srv.logons, "acceptor logon")
	const n = 500
	for i := range n {
		msg := quickfix.NewMessage()
		msg.Header.SetString(tag.MsgType, "B") // News
		msg.Body.SetString(tag.Headline, fmt.Sprint("item ", i))
		if err := acc.Send(id, msg); err != nil {
			t.Fatal(err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := acc.Flush(fctx, id); err != nil {
		t.Fatal(err)
	}
	if f := acc.app.flowOf(id); f.handed.Load() < n {
		t.Errorf("Flush returned with %d of %d handed", f.handed.Load(), n)
	}
	for deadline := time.Now().Add(10 * time.Second); got.Load() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the client received %d of %d", got.Load(), n)
		}
	}
	if err := acc.Logout(id, "done"); err != nil {
		t.Fatal(err)
	}
	wait(t, srv.logouts, "acceptor logout")
	if err := acc.Send(id, quickfix.NewMessage()); !errors.Is(err, ErrNotLoggedOn) {
		t.Errorf("Send after logout: %v, want ErrNotLoggedOn", err)
	}
	if err := acc.Flush(fctx, id); err != nil {
		t.Errorf("Flush with nothing outstanding: %v", err)
	}
}
