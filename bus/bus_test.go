package bus

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/netns"
	"fastfeed/md"
	"fastfeed/publisher"
)

func TestMain(m *testing.M) { netns.RunTests(m) }

// market is a publisher, a handler following all its instruments and a bus, in process,
// on the private namespace's loopback.
type market struct {
	p        *publisher.Publisher
	h        *feed.Handler
	b        *Bus
	symbols  []string
	ctx      context.Context
	feedDone chan error
	pubDone  chan error
}

func startMarket(tb testing.TB, n int, rate float64, count int64, cfg Config) *market {
	return startMarketWith(tb, n, rate, count, cfg, nil)
}

// snapshotRecovery is a feed.Recovery that refuses every retransmission and serves
// snapshots from the publisher: every hole ends in stale books and fresh snapshots.
type snapshotRecovery struct {
	ctx  context.Context
	p    *publisher.Publisher
	sink feed.Sink
	reqs chan func()
}

func (r *snapshotRecovery) Start(sink feed.Sink) {
	r.sink = sink
	go func() {
		for {
			select {
			case fn := <-r.reqs:
				fn()
			case <-r.ctx.Done():
				return
			}
		}
	}()
}

func (r *snapshotRecovery) Retransmit(channel string, _, _ uint32) {
	go r.sink.Failed(channel, false, "retransmission refused by the test")
}

func (r *snapshotRecovery) Snapshot(channel string, symbols []string) {
	select {
	case r.reqs <- func() {
		snaps, err := r.p.Snapshot(r.ctx, channel, symbols)
		if err != nil {
			r.sink.Failed(channel, true, err.Error())
			return
		}
		r.sink.Snapshots(channel, snaps)
	}:
	default:
		go r.sink.Failed(channel, true, "test recovery busy")
	}
}

func startMarketWith(tb testing.TB, n int, rate float64, count int64, cfg Config, tweak func(*feed.Config, *market)) *market {
	tb.Helper()
	ts, err := fast.LoadFile("../fixtures/templates.xml")
	if err != nil {
		tb.Fatal(err)
	}
	ins, err := publisher.GenerateInstruments(n)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	p, err := publisher.New(publisher.Config{Instruments: ins, Templates: ts, Rate: rate, Count: count, Seed: 7, Linger: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	m := &market{p: p, ctx: ctx, feedDone: make(chan error, 1), pubDone: make(chan error, 1)}
	for _, in := range ins {
		m.symbols = append(m.symbols, in.Symbol)
	}
	fc := feed.Config{Topics: m.symbols, Templates: ts}
	if tweak != nil {
		tweak(&fc, m)
	}
	if m.h, err = feed.New(fc); err != nil {
		tb.Fatal(err)
	}
	go func() { m.feedDone <- m.h.Run(ctx) }()
	cfg.Listen = "127.0.0.1:0"
	if testing.Verbose() && cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if m.b, err = New(m.h, cfg); err != nil {
		tb.Fatal(err)
	}
	if err := m.b.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.b.Stop)
	return m
}

// publish starts the publisher.
func (m *market) publish() { go func() { m.pubDone <- m.p.Run(m.ctx) }() }

func (m *market) client(tb testing.TB, compID, user string) *Client {
	tb.Helper()
	c, err := NewClient(ClientConfig{Connect: m.b.Addr(), SenderCompID: compID, Username: user, Password: user + "-pw"})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(m.ctx, 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

func (m *market) dump(tb testing.TB) book.Dump {
	tb.Helper()
	var d book.Dump
	if err := m.h.Do(m.ctx, func() { d = m.h.Dump() }); err != nil {
		tb.Fatal(err)
	}
	return d
}

func (m *market) stats(tb testing.TB) feed.Stats {
	tb.Helper()
	var st feed.Stats
	if err := m.h.Do(m.ctx, func() { st = m.h.Stats() }); err != nil {
		tb.Fatal(err)
	}
	return st
}

func subset(d book.Dump, keep func(string) bool) book.Dump {
	var out book.Dump
	for _, b := range d {
		if keep(b.Symbol) {
			out = append(out, b)
		}
	}
	return out
}

func users(us ...User) []User {
	for i := range us {
		us[i].Password = us[i].Username + "-pw"
	}
	return us
}

// waitBooks waits until the client's rebuilt books equal want(), read again at each try
// (the handler may still be applying the tail of the data).
func waitBooks(t *testing.T, c *Client, want func() book.Dump) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got book.Dump
		c.Books(func(b *Books) { got = b.Dump() })
		d := book.DiffDumps(got, want())
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client %s: books differ from the handler's (report %+v):\n%s", c.cfg.SenderCompID, c.Report(), d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEntitledBooks: two clients with different entitlements subscribe to overlapping
// sets over real FIX sessions; each client's books, rebuilt only from what it received,
// equal the handler's for exactly the instruments it is entitled to and asked for, and
// bad requests are rejected with reasons.
func TestEntitledBooks(t *testing.T) {
	m := startMarket(t, 8, 500, 1000, Config{Users: users(
		User{Username: "alice", Entitlements: []feed.Pattern{"*"}},
		User{Username: "bob", Entitlements: []feed.Pattern{"SBER", "LKOH", "US*"}},
	)})
	// AAPL GAZP GMKN LKOH MSFT NVDA SBER USD000UTSTOM
	alice := m.client(t, "ALICE", "alice")
	bob := m.client(t, "BOB", "bob")
	for _, r := range []struct {
		c        *Client
		id       string
		patterns []string
	}{
		{alice, "a1", []string{"G*", "SBER"}}, // GAZP GMKN SBER
		{alice, "a2", []string{"GAZP"}},       // overlaps a1
		{bob, "b1", []string{"*"}},            // only what bob is entitled to
		{bob, "b2", []string{"SBER"}},         // overlaps b1
		{bob, "b3", []string{"AAPL"}},         // not entitled
		{bob, "b4", []string{"NOPE"}},         // unknown
		{bob, "b1", []string{"LKOH"}},         // duplicate MDReqID
		{bob, "b5", []string{"ZZ*"}},          // matches nothing
		{bob, "b6", []string{"G*"}},           // matches, none entitled
	} {
		if err := r.c.Subscribe(r.id, r.patterns...); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Unsubscribe("a9"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Snapshot("a3", "MSFT"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rejects", func() bool { return len(bob.Report().Rejects) == 5 && len(alice.Report().Rejects) == 1 })
	m.publish()
	select {
	case <-m.p.DataDone():
	case <-time.After(60 * time.Second):
		t.Fatal("publisher did not finish")
	}
	aliceSyms := []string{"GAZP", "GMKN", "SBER"}
	bobSyms := []string{"LKOH", "SBER", "USD000UTSTOM"}
	defer func() {
		if t.Failed() {
			debugClients(t, m)
		}
	}()
	waitBooks(t, bob, func() book.Dump { return subset(m.dump(t), func(s string) bool { return slices.Contains(bobSyms, s) }) })
	// MSFT was a snapshot only (263=0): alice has it as it was before the data.
	waitBooks(t, alice, func() book.Dump {
		want := subset(m.dump(t), func(s string) bool { return slices.Contains(aliceSyms, s) })
		want = append(want, book.DumpBook{Symbol: "MSFT", Bids: []book.DumpLevel{}, Asks: []book.DumpLevel{}})
		slices.SortFunc(want, func(a, b book.DumpBook) int { return strings.Compare(a.Symbol, b.Symbol) })
		return want
	})

	rejects := bob.Report().Rejects
	slices.SortFunc(rejects, func(a, b md.MarketDataReject) int { return strings.Compare(a.MDReqID+a.Text, b.MDReqID+b.Text) })
	want := []struct {
		id     string
		reason byte
		text   string
	}{
		{"b1", md.RejectDuplicateMDReqID, "already subscribed"},
		{"b3", md.RejectInsufficientPermissions, `not entitled to "AAPL"`},
		{"b4", md.RejectUnknownSymbol, `unknown symbol "NOPE"`},
		{"b5", md.RejectUnknownSymbol, `no instrument matches "ZZ*"`},
		{"b6", md.RejectInsufficientPermissions, `not entitled to "G*"`},
	}
	for i, w := range want {
		r := rejects[i]
		if r.MDReqID != w.id || r.Reason != w.reason || !strings.Contains(r.Text, w.text) {
			t.Errorf("reject %d: got %+v (reason %q), want %s %q %q", i, r, r.Reason, w.id, w.reason, w.text)
		}
	}
	if r := alice.Report().Rejects; len(r) != 1 || r[0].MDReqID != "a9" || !strings.Contains(r[0].Text, "unknown MDReqID") {
		t.Errorf("alice's rejects: %+v", r)
	}
	for _, c := range []*Client{alice, bob} {
		rep := c.Report()
		if rep.Books.Gaps != 0 || len(rep.Errors) != 0 || rep.Books.Entries == 0 {
			t.Errorf("%s: %+v", c.cfg.SenderCompID, rep)
		}
		if rep.Books.Duplicates == 0 {
			t.Errorf("%s: overlapping subscriptions delivered no duplicate entries: %+v", c.cfg.SenderCompID, rep.Books)
		}
	}
	for _, cs := range m.b.Clients() {
		if cs.Conflations != 0 || cs.Dropped != 0 {
			t.Errorf("client %s conflated: %+v", cs.Session, cs)
		}
	}
	if st := m.stats(t); st.Gaps != 0 || st.KernelDrops != 0 || st.StaleBooks != 0 || st.Messages == 0 {
		t.Errorf("handler counters: %+v", st)
	}
}

// rawClient is a FIX client on a plain socket with a small receive buffer, so that not
// reading makes the bus's side of the connection fill quickly.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
	seq  int
}

func dialRaw(t testing.TB, addr, compID, user string) *rawClient {
	t.Helper()
	return dialRawBuffer(t, addr, compID, user, 4096)
}

// dialRawBuffer is dialRaw with a receive buffer of rcvbuf bytes (0: the system's).
func dialRawBuffer(t testing.TB, addr, compID, user string, rcvbuf int) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		if rcvbuf == 0 {
			return nil
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{conn: conn, r: bufio.NewReaderSize(conn, 4096)}
	logon := quickfix.NewMessage()
	logon.Header.SetString(tag.MsgType, "A")
	logon.Header.SetString(tag.SenderCompID, compID)
	logon.Header.SetString(tag.TargetCompID, fixsession.OMSCompID)
	logon.Body.SetInt(tag.EncryptMethod, 0)
	logon.Body.SetInt(tag.HeartBtInt, 60)
	logon.Body.SetBool(tag.ResetSeqNumFlag, true)
	logon.Body.SetString(tag.DefaultApplVerID, fixsession.DefaultApplVerID)
	logon.Body.SetString(tag.Username, user)
	logon.Body.SetString(tag.Password, user+"-pw")
	c.send(t, logon)
	msg := c.read(t)
	if !msg.IsMsgTypeOf("A") {
		t.Fatalf("logon answered with %v", msg)
	}
	return c
}

func (c *rawClient) send(t testing.TB, msg *quickfix.Message) {
	t.Helper()
	c.seq++
	msg.Header.SetString(tag.BeginString, fixsession.BeginString)
	msg.Header.SetString(tag.SenderCompID, c.senderOf(msg))
	msg.Header.SetString(tag.TargetCompID, fixsession.OMSCompID)
	msg.Header.SetInt(tag.MsgSeqNum, c.seq)
	msg.Header.SetField(tag.SendingTime, quickfix.FIXUTCTimestamp{Time: time.Now().UTC()})
	if _, err := io.WriteString(c.conn, msg.String()); err != nil {
		t.Fatal(err)
	}
}

func (c *rawClient) senderOf(msg *quickfix.Message) string {
	if s, err := msg.Header.GetString(tag.SenderCompID); err == nil {
		return s
	}
	return "SLOW"
}

// read reads one message.
func (c *rawClient) read(t testing.TB) *quickfix.Message {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	head, err := c.r.ReadString(1) // 8=FIXT.1.1
	if err != nil {
		t.Fatal(err)
	}
	lenField, err := c.r.ReadString(1) // 9=N
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(lenField, "9="), "\x01"))
	if err != nil {
		t.Fatalf("bad BodyLength %q", lenField)
	}
	rest := make([]byte, n+7) // body, then "10=NNN\x01"
	if _, err := io.ReadFull(c.r, rest); err != nil {
		t.Fatal(err)
	}
	msg, err := md.ParseFIX([]byte(head + lenField + string(rest)))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestSlowClient: a client that stops reading is conflated and then logged out with a
// reason, while a fast client keeps receiving every update in order and the handler's
// receive loop never stalls.
func TestSlowClient(t *testing.T) {
	// Small TCP buffers in the test's private namespace, so that a client that stops
	// reading fills its connection in a fraction of a second instead of megabytes.
	for _, name := range []string{"tcp_wmem", "tcp_rmem"} {
		path := "/proc/sys/net/ipv4/" + name
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("4096 16384 65536"), 0o644); err != nil {
			t.Fatalf("%s (only in the test's private network namespace): %v", path, err)
		}
		t.Cleanup(func() { os.WriteFile(path, old, 0o644) })
	}
	m := startMarket(t, 8, 1000, 6000, Config{Users: users(User{Username: "demo", Entitlements: []feed.Pattern{"*"}}),
		// SlowLimit and QueueSize leave the fast client room on a loaded 2-CPU machine (it
		// was evicted at 500 ms, and at 2 s, and conflated with a queue of 8192, while eight
		// builds and test runs shared the machine); the slow one, subscribed four times and
		// reading nothing through 64 KiB buffers, overflows its own queue and is evicted all
		// the same.
		QueueSize: 32768, MaxInFlight: 64, SlowLimit: 8 * time.Second})
	fast := m.client(t, "FAST", "demo")
	if err := fast.Subscribe("f1", "*"); err != nil {
		t.Fatal(err)
	}
	slow := dialRaw(t, m.b.Addr(), "SLOW", "demo")
	// Four subscriptions to everything: the slow client's queue fills four times as fast
	// as the fast client's.
	for i := range 4 {
		req := md.MarketDataRequest{MDReqID: "s" + strconv.Itoa(i), SubscriptionType: md.SubscriptionSubscribe, Symbols: []string{"*"}}
		slow.send(t, req.ToFIX())
	}
	waitFor(t, "the subscriptions", func() bool {
		n := 0
		for _, cs := range m.b.Clients() {
			n += cs.Requests
		}
		return n == 5
	})
	m.publish() // the slow client reads nothing from here on
	var slowStats ClientStats
	waitFor(t, "the slow client's eviction", func() bool {
		for _, cs := range m.b.Clients() {
			if strings.Contains(cs.Session, "SLOW") && cs.LoggedOut != "" {
				slowStats = cs
				return true
			}
		}
		return false
	})
	if slowStats.Conflations == 0 || slowStats.Dropped == 0 || !strings.Contains(slowStats.LoggedOut, "slow consumer") {
		t.Errorf("slow client: %+v", slowStats)
	}
	// Now read: the slow client gets what was queued, then the Logout with the reason.
	var logout string
	for logout == "" {
		msg := slow.read(t)
		if msg.IsMsgTypeOf("5") {
			logout, _ = msg.Body.GetString(tag.Text)
			if logout == "" {
				logout = "(no text)"
			}
		}
	}
	if !strings.Contains(logout, "slow consumer") {
		t.Errorf("Logout text %q", logout)
	}
	select {
	case <-m.p.DataDone():
	case <-time.After(60 * time.Second):
		t.Fatal("publisher did not finish")
	}
	waitBooks(t, fast, func() book.Dump { return m.dump(t) })
	// The fast client keeps up on a machine with CPU to spare (no conflation in CI); on
	// a starved one its queue may overflow too, which is conflation doing its job: a
	// fresh W per instrument each time, never a gap, never the slow client's eviction.
	var fastStats ClientStats
	for _, cs := range m.b.Clients() {
		if strings.Contains(cs.Session, "FAST") {
			fastStats = cs
		}
	}
	if fastStats.LoggedOut != "" || fastStats.Conflations >= slowStats.Conflations {
		t.Errorf("fast client treated as slow: %+v (slow client %+v)", fastStats, slowStats)
	}
	rep := fast.Report()
	if rep.Books.Gaps != 0 || rep.Books.Duplicates != 0 || len(rep.Errors) != 0 ||
		rep.Books.Snapshots != uint64(len(m.symbols))*(1+fastStats.Conflations) {
		t.Errorf("fast client: %+v (%d conflations)", rep, fastStats.Conflations)
	}
	if st := m.stats(t); st.Gaps != 0 || st.KernelDrops != 0 || st.Messages == 0 {
		t.Errorf("handler counters: %+v", st)
	}
	t.Logf("slow client: %+v; fast client received %d entries, conflated %d times", slowStats, rep.Books.Entries, fastStats.Conflations)
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
	}{
		{"ok", `{"users":[{"username":"demo","password":"demo","entitlements":["*"]}],"slow_limit":"1s"}`, ""},
		{"no users", `{}`, "no users"},
		{"unknown field", `{"users":[],"colour":1}`, "unknown field"},
		{"bad pattern", `{"users":[{"username":"a","password":"b","entitlements":["S*B"]}]}`, "only at the end"},
		{"empty pattern", `{"users":[{"username":"a","password":"b","entitlements":[""]}]}`, "empty pattern"},
		{"twice", `{"users":[{"username":"a","password":"b"},{"username":"a","password":"c"}]}`, "given twice"},
		{"bad duration", `{"users":[{"username":"a","password":"b"}],"slow_limit":"soon"}`, "slow_limit"},
		{"trailing", `{"users":[{"username":"a","password":"b"}]} {}`, "after the JSON"},
		{"negative", `{"users":[{"username":"a","password":"b"}],"queue_size":-1}`, "negative"},
		{"FIX limits", `{"users":[{"username":"a","password":"b"}],"fix_max_connections":10,"fix_max_connections_per_source":2,"fix_max_logon_size":2048,"fix_logon_timeout":"2s"}`, ""},
		{"negative FIX cap", `{"users":[{"username":"a","password":"b"}],"fix_max_connections_per_source":-1}`, "fix_max_connections_per_source: -1 is negative"},
		{"tiny Logon limit", `{"users":[{"username":"a","password":"b"}],"fix_max_logon_size":10}`, "MaxLogonSize 10"},
		{"bad Logon timeout", `{"users":[{"username":"a","password":"b"}],"fix_logon_timeout":"-1s"}`, "fix_logon_timeout: -1s is not positive"},
		{"lockout", `{"users":[{"username":"a","password":"b"}],"fix_max_logon_failures":3,"fix_lockout":"30s"}`, ""},
		{"bad lockout", `{"users":[{"username":"a","password":"b"}],"fix_lockout":"0s"}`, "fix_lockout: 0s is not positive"},
		{"negative failures", `{"users":[{"username":"a","password":"b"}],"fix_max_logon_failures":-2}`, "fix_max_logon_failures: -2 is negative"},
		{"TLS", `{"users":[{"username":"a","password":"b"}],"fix_tls_cert":"c.pem","fix_tls_key":"k.pem","fix_tls_ca":"ca.pem"}`, ""},
		{"TLS key alone", `{"users":[{"username":"a","password":"b"}],"fix_tls_key":"k.pem"}`, "fix_tls_cert and fix_tls_key go together"},
		{"TLS CA alone", `{"users":[{"username":"a","password":"b"}],"fix_tls_ca":"ca.pem"}`, "fix_tls_ca needs them"},
		{"hashed password", `{"users":[{"username":"a","password":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"}]}`, ""},
		{"bcrypt password", `{"users":[{"username":"a","password":"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"}]}`, ""},
		{"bad hash", `{"users":[{"username":"a","password":"$argon2id$v=19$m=1,t=1,p=1$AA$AA"}]}`, `user "a": passhash: argon2id m=1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tc.in))
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("got %v, want %q", err, tc.err)
			}
		})
	}
	cfg, err := LoadConfig("../fixtures/bus.json")
	if err != nil {
		t.Fatal(err)
	}
	demo := cfg.Users[0]
	if demo.Username != fixsession.DemoUsername || demo.Password != fixsession.DemoPassword || !slices.Equal(demo.Entitlements, []feed.Pattern{"*"}) {
		t.Errorf("fixture's first user %+v, want demo/demo entitled to *", demo)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(`{"users":[{"username":"demo","password":"demo","entitlements":["*","SB*","G239.1.2.3:30001"]}]}`)
	f.Add(`{"listen":"127.0.0.1:0","queue_size":3,"slow_limit":"1ms","users":[{"username":"a","password":"b"}]}`)
	f.Add(`{"users":[{"username":"a","password":"b","entitlements":["*x"]}]}`)
	f.Add(`{"users":[{"username":"a","password":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"}],` +
		`"fix_max_logon_failures":3,"fix_lockout":"1m","fix_tls_cert":"c","fix_tls_key":"k","fix_tls_ca":"ca"}`)
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseConfig(strings.NewReader(s))
		if err != nil {
			return
		}
		if err := cfg.setDefaults(); err != nil {
			t.Fatalf("ParseConfig accepted what setDefaults refuses: %v", err)
		}
		if cfg.QueueSize&(cfg.QueueSize-1) != 0 {
			t.Fatalf("queue size %d not a power of two", cfg.QueueSize)
		}
	})
}

func TestParseDec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want md.Decimal
	}{
		{"101.25", md.Dec(10125, -2)}, {"-0.5", md.Dec(-5, -1)}, {"0", md.Dec(0, 0)}, {"91500", md.Dec(91500, 0)},
	} {
		if got := parseDec(tc.in); got != tc.want {
			t.Errorf("parseDec(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestPatternCheck(t *testing.T) {
	for p, ok := range map[string]bool{"*": true, "SB*": true, "SBER": true, "G239.1.2.3:30001": true, "": false, "S*B": false, "A B": false} {
		if err := checkPattern(p); (err == nil) != ok {
			t.Errorf("checkPattern(%q) = %v", p, err)
		}
	}
}

// debugClients logs the bus's counters of every client.
func debugClients(t *testing.T, m *market) {
	for _, cs := range m.b.Clients() {
		t.Logf("%+v", cs)
	}
}

// TestStaleAndFresh: books that go stale in the handler are signalled to subscribers
// (SecurityStatus 326=20, Text "stale") and a fresh W follows when they are rebuilt; the
// client's books end equal to the handler's.
func TestStaleAndFresh(t *testing.T) {
	// This test is about staleness, not eviction: a client starved of CPU on a loaded
	// machine must not be logged out as a slow consumer (it was, at the default 2 s).
	m := startMarketWith(t, 4, 1000, 3000, Config{Users: users(User{Username: "demo", Entitlements: []feed.Pattern{"*"}}), SlowLimit: 30 * time.Second},
		func(fc *feed.Config, m *market) {
			fc.Inject = feed.Inject{Loss: 0.01, Seed: 3}
			fc.Recovery = &snapshotRecovery{ctx: m.ctx, p: m.p, reqs: make(chan func(), 64)}
		})
	c := m.client(t, "STALE", "demo")
	if err := c.Subscribe("s", "*"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first snapshots", func() bool { return c.Report().Books.Snapshots == 4 })
	m.publish()
	select {
	case <-m.p.DataDone():
	case <-time.After(60 * time.Second):
		t.Fatal("publisher did not finish")
	}
	waitFor(t, "every book fresh", func() bool { return m.stats(t).StaleBooks == 0 })
	waitBooks(t, c, func() book.Dump { return m.dump(t) })
	rep := c.Report()
	st := m.stats(t)
	if st.StaleEvents == 0 || st.SnapshotsDone == 0 {
		t.Fatalf("no stale books in the handler (loss injection ineffective?): %+v", st)
	}
	if rep.Books.Stale == 0 || rep.Books.Snapshots <= 4 || len(rep.Errors) != 0 {
		t.Errorf("client saw no stale status or no fresh snapshot: %+v (handler %d stale events)", rep, st.StaleEvents)
	}
	t.Logf("handler: %d stale events, %d snapshot recoveries; client: %+v", st.StaleEvents, st.SnapshotsDone, rep.Books)
}
