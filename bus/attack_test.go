package bus

import (
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/internal/fdtest"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/fixtest"
)

// TestRepeatedUsernameLogonRefused is issue 18, hole 1: a Logon carrying two Usernames,
// the second with its own password, authenticated as the second user (quickfix reads
// the last 553) and was entitled as the first (the bus scraped the first from the log):
// a V for 55=* then returned a W for every symbol. Both Logons of the report are now
// refused with a reason, counted, and nothing is sent; fx, logged on properly, is
// refused 55=*.
func TestRepeatedUsernameLogonRefused(t *testing.T) {
	var logs fixtest.LogBuffer
	m := startMarket(t, 4, 100, 10, Config{
		Users: users(
			User{Username: "demo", Entitlements: []feed.Pattern{"*"}},
			User{Username: "fx", Entitlements: []feed.Pattern{"SB0001"}},
		),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	m.publish()
	tg := fixtest.Target{Addr: m.b.Addr(), CompID: fixsession.OMSCompID}
	v := []string{"35=V", "262=all", "263=1", "264=0", "146=1", "55=*"}
	for i, logon := range [][]string{
		{"35=A", "98=0", "108=30", "553=demo", "553=fx", "554=fx-pw", "1137=9"},
		{"35=A", "98=0", "108=30", "58=x", "553=demo", "553=fx", "554=fx-pw", "1137=9"},
	} {
		c := fixtest.Dial(t, tg, "EVE"+string(rune('A'+i)))
		c.Write(t, append(c.Message(logon...), c.Message(v...)...))
		got := c.WaitClosed(t, 10*time.Second)
		if len(got) != 1 || fixtest.Field(got[0], 35) != "5" || !strings.Contains(fixtest.Field(got[0], 58), "repeats Username (553)") {
			t.Fatalf("attack %d: the OMS service answered %q, want one Logout saying the Logon repeats Username (553)", i+1, got)
		}
	}
	if st := m.b.FIXStats(); st.LogonsRefused != 2 {
		t.Errorf("FIXStats().LogonsRefused = %d, want 2", st.LogonsRefused)
	}
	if cs := m.b.Clients(); len(cs) != 0 {
		t.Errorf("clients after the attacks: %+v", cs)
	}
	// The control: fx logged on with its own Logon is who it is.
	c := fixtest.Dial(t, tg, "FX")
	c.Write(t, c.Message("35=A", "98=0", "108=30", "1137=9", "553=fx", "554=fx-pw"))
	c.Expect(t, "A", 10*time.Second)
	c.Write(t, c.Message(v...))
	if y := c.Expect(t, "Y", 10*time.Second); !strings.Contains(fixtest.Field(y, 58), `user "fx" is not entitled to "*"`) {
		t.Errorf("fx asking for 55=*: %q", fixtest.Field(y, 58))
	}
	cs := m.b.Clients()
	if len(cs) != 1 || cs[0].Username != "fx" || cs[0].Snapshots != 0 {
		t.Errorf("clients %+v, want fx alone with no snapshot", cs)
	}
	if !strings.Contains(logs.String(), "username=fx") || strings.Contains(logs.String(), "username=demo") {
		t.Errorf("the log names another user than fx:\n%s", logs.String())
	}
}

// TestOMSDescriptorExhaustion is issue 18, hole 2, on the OMS service under
// RLIMIT_NOFILE 1024 (`ulimit -n 1024`): 400 connections that send nothing, then close.
// Those over the cap are closed at once; afterwards a client logs on and gets its books,
// and the process holds no more descriptors than before the attack.
func TestOMSDescriptorExhaustion(t *testing.T) {
	if !fdtest.Child(t, 1024) {
		return
	}
	m := startMarket(t, 2, 100, 10, Config{Users: users(User{Username: "demo", Entitlements: []feed.Pattern{"*"}})})
	m.publish()
	for deadline := time.Now().Add(10 * time.Second); m.stats(t).Datagrams == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) { // the publisher's socket is open once the handler has read from it
			t.Fatal("no datagram from the publisher")
		}
	}
	before := fdtest.Open(t)
	var conns []net.Conn
	for i := range 400 {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%10))}}
		c, err := d.Dial("tcp", m.b.Addr())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := m.b.FIXStats(); st.Open+st.Refused < 400; st = m.b.FIXStats() {
		if time.Now().After(deadline) {
			t.Fatalf("connections not all accepted or refused: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := m.b.FIXStats()
	t.Logf("400 idle connections: %d open, %d refused; %d descriptors open in the process (%d before, 400 the clients')",
		st.Open, st.Refused, fdtest.Open(t), before)
	if st.Refused == 0 || st.Open > uint64(1024/3) {
		t.Errorf("Open %d, Refused %d: the cap did not hold under RLIMIT_NOFILE 1024", st.Open, st.Refused)
	}
	for _, c := range conns {
		c.Close()
	}
	c := m.client(t, "AFTER", "demo")
	if err := c.Subscribe("all", "*"); err != nil {
		t.Fatal(err)
	}
	waitBooks(t, c, func() (d book.Dump) { return m.dump(t) })
	c.Close()
	deadline = time.Now().Add(10 * time.Second)
	for runtime.GC(); fdtest.Open(t) > before; runtime.GC() {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open, %d before the attack:\n%s", fdtest.Open(t), before, fdtest.List())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
