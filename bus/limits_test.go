package bus

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/md"
)

// TestOMSRestartFileStore: the OMS service, on a file store, restarts mid-stream; the
// client, on a file store too, logs on again with its next sequence numbers (no reset),
// subscribes again, and its books end equal to the handler's.
func TestOMSRestartFileStore(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Users: users(User{Username: "demo", Entitlements: []feed.Pattern{"*"}}),
		Persistence: fixsession.Persistence{FileStorePath: filepath.Join(dir, "oms-store"), FileLogPath: filepath.Join(dir, "oms-log")}}
	m := startMarket(t, 8, 500, 4000, cfg)
	c, err := NewClient(ClientConfig{Connect: m.b.Addr(), SenderCompID: "RESTARTER", Username: "demo", Password: "demo-pw",
		Resubscribe: true, ReconnectInterval: time.Second,
		Persistence: fixsession.Persistence{FileStorePath: filepath.Join(dir, "cli-store"), FileLogPath: filepath.Join(dir, "cli-log")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(m.ctx, 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Subscribe("all", "*"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, f := range []string{"cli-log/FIXT.1.1-RESTARTER-FFFEED", "oms-log/FIXT.1.1-FFFEED-RESTARTER"} {
			b, _ := os.ReadFile(filepath.Join(dir, f+".messages.log"))
			var keep []string
			for _, line := range strings.Split(string(b), "\n") {
				if !strings.Contains(line, "|35=X|") {
					keep = append(keep, line)
				}
			}
			ev, _ := os.ReadFile(filepath.Join(dir, f+".event.log"))
			t.Logf("%s (X left out):\n%s\n%s", f, strings.Join(keep, "\n"), ev)
		}
	})
	m.publish()
	waitFor(t, "updates before the restart", func() bool { return c.Report().Updates > 200 })

	addr := m.b.Addr()
	m.b.Stop() // mid-stream
	cfg.Listen = addr
	b2, err := New(m.h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Start(m.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b2.Stop)
	waitFor(t, "the second logon", func() bool { return c.Logons() == 2 })
	select {
	case <-m.p.DataDone():
	case <-time.After(60 * time.Second):
		t.Fatal("publisher did not finish")
	}
	waitBooks(t, c, func() book.Dump { return m.dump(t) })

	logons := logonSeqNums(t, filepath.Join(dir, "cli-log", "FIXT.1.1-RESTARTER-FFFEED.messages.log"))
	if len(logons) != 2 || logons[0] != 1 || logons[1] <= 2 {
		t.Errorf("the client's Logon MsgSeqNums %v: want 1, then the next after the first session's (no reset)", logons)
	}
	if rep := c.Report(); len(rep.Errors) != 0 || len(rep.Rejects) != 0 {
		t.Errorf("client report: %+v", rep)
	}
	t.Logf("client logons with MsgSeqNum %v; %d updates", logons, c.Report().Updates)
}

var seqNumRE = regexp.MustCompile(`\|34=(\d+)\|`)

// logonSeqNums returns the MsgSeqNum of each Logon a file log shows going out.
func logonSeqNums(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, " out ") || !strings.Contains(line, "|35=A|") {
			continue
		}
		if m := seqNumRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

// TestOMSRequestFlood: one logged-on client sends 10,000 MarketDataRequests per second.
// It gets session-level Rejects with the reason, then a Logout; the handler (the
// watcher of the multicast) sees no gap; another client is served throughout, its books
// equal the handler's, and its p99 latency in the flood is logged next to a quiet
// window's.
func TestOMSRequestFlood(t *testing.T) {
	m := startMarket(t, 8, 1000, 8000, Config{Users: users(User{Username: "demo", Entitlements: []feed.Pattern{"*"}}),
		RequestLimits: fixsession.RequestLimits{PerSecond: 50, Burst: 50, MaxRejects: 1000},
		SlowLimit:     time.Minute}) // a loaded machine (-race) must not make the good client a slow consumer
	good := m.client(t, "GOOD", "demo")
	if err := good.Subscribe("g", "*"); err != nil {
		t.Fatal(err)
	}
	m.publish()
	waitFor(t, "updates", func() bool { return good.Report().Updates > 100 })
	good.ResetLatency()
	time.Sleep(2 * time.Second)
	quiet := good.Latency()

	good.ResetLatency()
	// The system's receive buffer: with dialRaw's 4 KiB the flooder once saw 498 of
	// 9,017 rejects and no Logout (the attack table's flood row does the same).
	flooder := dialRawBuffer(t, m.b.Addr(), "FLOODER", "demo", 0)
	res := floodUntilLogout(t, flooder, 10000, 3000)
	loud := good.Latency()

	select {
	case <-m.p.DataDone():
	case <-time.After(60 * time.Second):
		t.Fatal("publisher did not finish")
	}
	waitBooks(t, good, func() book.Dump { return m.dump(t) })
	ls := m.b.LimitStats()
	const reason = "request rate over the limit of 50 per second"
	if res.reasons[reason] < 1000 || res.logout != "request rate over the limit: logged out" || ls.RateRejects < 1000 || ls.RateLogouts != 1 {
		t.Errorf("flooder: sent %d, %d rejects %v, logout %q; limit stats %+v", res.sent, res.rejects, res.reasons, res.logout, ls)
	}
	if st := m.stats(t); st.Gaps != 0 || st.KernelDrops != 0 || st.Messages == 0 {
		t.Errorf("watcher handler: %+v", st)
	}
	if rep := good.Report(); rep.Books.Gaps != 0 || len(rep.Errors) != 0 || !rep.LoggedOn {
		t.Errorf("good client: %+v", rep)
	}
	t.Logf("flooder: sent %d requests at 10,000/s until logged out, %d rejects (%d with %q), logout %q; limit stats %+v",
		res.sent, res.rejects, res.reasons[reason], reason, res.logout, ls)
	t.Logf("good client's latency: quiet p50 %.0f µs p99 %.0f µs (%d X); flood p50 %.0f µs p99 %.0f µs (%d X); p99 ratio %.2f",
		float64(quiet.ValueAtQuantile(50))/1e3, float64(quiet.ValueAtQuantile(99))/1e3, quiet.TotalCount(),
		float64(loud.ValueAtQuantile(50))/1e3, float64(loud.ValueAtQuantile(99))/1e3, loud.TotalCount(),
		float64(loud.ValueAtQuantile(99))/max(1, float64(quiet.ValueAtQuantile(99))))
}

// TestOMSSubscriptionLimit: subscriptions beyond MaxSubscriptions get a Y with reason 2
// and the limit, counted; a client that goes on is logged out.
func TestOMSSubscriptionLimit(t *testing.T) {
	m := startMarket(t, 8, 500, 100, Config{Users: users(User{Username: "demo", Entitlements: []feed.Pattern{"*"}}),
		MaxSubscriptions: 2, RequestLimits: fixsession.RequestLimits{MaxRejects: 3}})
	c := dialRaw(t, m.b.Addr(), "SUBS", "demo")
	for i := range 5 { // 2 within the limit, 3 over it
		req := md.MarketDataRequest{MDReqID: "s" + strconv.Itoa(i), SubscriptionType: md.SubscriptionSubscribe, Symbols: []string{m.symbols[i]}}
		msg := req.ToFIX()
		msg.Header.SetString(49, "SUBS")
		c.send(t, msg)
	}
	var rejects []md.MarketDataReject
	var logout string
	for logout == "" {
		msg := c.read(t)
		switch {
		case msg.IsMsgTypeOf("Y"):
			rej, err := md.MarketDataRejectFromFIX(msg)
			if err != nil {
				t.Fatal(err)
			}
			rejects = append(rejects, rej)
		case msg.IsMsgTypeOf("5"):
			logout, _ = msg.Body.GetString(58)
		}
	}
	if len(rejects) != 3 || logout != "subscription limit: logged out" {
		t.Fatalf("rejects %+v, logout %q; want 3 and a logout", rejects, logout)
	}
	for _, r := range rejects {
		if r.Reason != md.RejectInsufficientBandwidth || r.Text != "subscription limit of 2 per client reached" {
			t.Errorf("reject %+v", r)
		}
	}
	c.conn.Close()
	var end ClientStats
	waitFor(t, "the client's end", func() bool {
		for _, cs := range m.b.Clients() {
			if strings.Contains(cs.Session, "SUBS") && !cs.Connected {
				end = cs
				return true
			}
		}
		return false
	})
	if end.OverLimit != 3 || end.Rejects != 3 {
		t.Errorf("client stats %+v: want 3 rejects over the limit", end)
	}
}
