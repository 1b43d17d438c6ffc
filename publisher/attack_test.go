package publisher

import (
	"net"
	"runtime"
	"testing"
	"time"

	"fastfeed/internal/fdtest"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/fixtest"
	"fastfeed/internal/netns"
)

// TestRecoveryDescriptorExhaustion is issue 18, hole 2, on the recovery service under
// RLIMIT_NOFILE 1024 (`ulimit -n 1024`): 400 connections that send nothing, then close.
// Before the fix no Logon was answered again and about 730 descriptors stayed open. Now
// those over the cap are closed at once, a Logon is answered afterwards, and the process
// holds no more descriptors than before the attack.
func TestRecoveryDescriptorExhaustion(t *testing.T) {
	netns.Require(t)
	if !fdtest.Child(t, 1024) {
		return
	}
	p := newPublisher(t, Config{Instruments: generate(t, 2),
		Recovery: RecoveryConfig{Listen: "127.0.0.1:0", Users: []User{{fixsession.DemoUsername, fixsession.DemoPassword}}}})
	svc := startService(t, p, RecoveryOptions{})
	before := fdtest.Open(t)
	var conns []net.Conn
	for i := range 400 {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%10))}}
		c, err := d.Dial("tcp", svc.Addr())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := svc.Stats().FIX; st.Open+st.Refused < 400; st = svc.Stats().FIX {
		if time.Now().After(deadline) {
			t.Fatalf("connections not all accepted or refused: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := svc.Stats().FIX
	t.Logf("400 idle connections: %d open, %d refused; %d descriptors open in the process (%d before, 400 the clients')",
		st.Open, st.Refused, fdtest.Open(t), before)
	if st.Refused == 0 || st.Open > uint64(1024/3) {
		t.Errorf("Open %d, Refused %d: the cap did not hold under RLIMIT_NOFILE 1024", st.Open, st.Refused)
	}
	for _, c := range conns {
		c.Close()
	}
	tg := fixtest.Target{Addr: svc.Addr(), CompID: fixsession.RecoveryCompID}
	c := fixtest.Dial(t, tg, "AFTER")
	c.Logon(t, fixsession.DemoUsername, fixsession.DemoPassword)
	c.Ping(t)
	c.Close()
	deadline = time.Now().Add(10 * time.Second)
	for runtime.GC(); fdtest.Open(t) > before; runtime.GC() {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open, %d before the attack:\n%s", fdtest.Open(t), before, fdtest.List())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
