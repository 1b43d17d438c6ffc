package fixsession

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fastfeed/md"
)

// logonSeqNums returns the MsgSeqNum (34) of each Logon (35=A) a file log shows going in
// direction dir ("in" or "out").
func logonSeqNums(t *testing.T, path, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) < 3 || f[1] != dir || !strings.Contains(f[2], "|35=A|") {
			continue
		}
		n, err := strconv.Atoi(field([]byte(strings.ReplaceAll(f[2], "|", "\x01")), 34))
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, n)
	}
	return out
}

// TestFileStoreRestart restarts an acceptor with a file store mid-session: the
// initiator, also on a file store, logs on again with its next sequence numbers, the
// acceptor answers with its own, and messages flow on both ways.
func TestFileStoreRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	accCfg := AcceptorConfig{Listen: "127.0.0.1:" + strconv.Itoa(port), CompID: "FFSTORE",
		Credentials: StaticCredentials(DemoUsername, DemoPassword),
		Persistence: Persistence{FileStorePath: filepath.Join(dir, "acc-store"), FileLogPath: filepath.Join(dir, "acc-log")}}
	start := func(h Handler) *Acceptor {
		a, err := NewAcceptor(accCfg, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return a
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"ini-log/FIXT.1.1-STORECLI-FFSTORE", "acc-log/FIXT.1.1-FFSTORE-STORECLI"} {
				for _, ext := range []string{".messages.log", ".event.log"} {
					b, _ := os.ReadFile(filepath.Join(dir, f+ext))
					t.Logf("%s%s:\n%s", f, ext, b)
				}
			}
		}
	})
	srv1, cli := newRecorder(), newRecorder()
	acc := start(srv1)
	ini := startInitiator(t, ctx, InitiatorConfig{Connect: acc.Addr(), SenderCompID: "STORECLI", TargetCompID: "FFSTORE",
		Username: DemoUsername, Password: DemoPassword, ReconnectInterval: time.Second,
		Persistence: Persistence{FileStorePath: filepath.Join(dir, "ini-store"), FileLogPath: filepath.Join(dir, "ini-log")}}, cli)
	id := wait(t, srv1.logons, "first logon")
	wait(t, cli.logons, "first logon at the initiator")
	const sent = 3
	for k := range sent {
		req := md.MarketDataRequest{MDReqID: "r" + strconv.Itoa(k), SubscriptionType: md.SubscriptionSnapshot, ApplID: "G1:1", BegSeqNum: 1, EndSeqNum: 2}
		if err := ini.Send(req.ToFIX()); err != nil {
			t.Fatal(err)
		}
		wait(t, srv1.msgs, "request")
	}
	rej := md.MarketDataReject{MDReqID: "r0", Reason: md.RejectUnsupportedScope, Text: "test"}
	if err := acc.Send(id, rej.ToFIX()); err != nil {
		t.Fatal(err)
	}
	wait(t, cli.msgs, "reject")

	stop(t, "acceptor", acc.Stop) // the restart: a new acceptor on the same store
	wait(t, cli.logouts, "logout at the initiator")
	srv2 := newRecorder()
	acc2 := start(srv2)
	t.Cleanup(acc2.Stop)
	if got := wait(t, srv2.logons, "logon after the restart"); got != id {
		t.Errorf("session %v after the restart, want %v", got, id)
	}
	wait(t, cli.logons, "second logon at the initiator")
	req := md.MarketDataRequest{MDReqID: "after", SubscriptionType: md.SubscriptionSnapshot, ApplID: "G1:1", BegSeqNum: 1, EndSeqNum: 2}
	if err := ini.Send(req.ToFIX()); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, srv2.msgs, "request after the restart"); got.id != id {
		t.Errorf("request on %v", got.id)
	}
	if err := acc2.Send(id, rej.ToFIX()); err != nil {
		t.Fatal(err)
	}
	wait(t, cli.msgs, "reject after the restart")

	// The initiator's Logons: 1, then 1 + Logon + requests + its answer to the
	// acceptor's Logout (+ 1 if the Logout exchange did not finish). The acceptor's: 1,
	// then 1 + Logon + reject + Logout (+ the second Logout quickfix v0.9.7 sends after
	// the answer, which the initiator may not read).
	iniLog := filepath.Join(dir, "ini-log", "FIXT.1.1-STORECLI-FFSTORE.messages.log")
	if got := logonSeqNums(t, iniLog, "out"); len(got) != 2 || got[0] != 1 || got[1] < 1+1+sent+1 || got[1] > 1+1+sent+2 {
		t.Errorf("initiator's Logon MsgSeqNums %v, want [1 %d or %d]", got, 1+1+sent+1, 1+1+sent+2)
	}
	if got := logonSeqNums(t, iniLog, "in"); len(got) != 2 || got[0] != 1 || got[1] < 1+1+1+1 || got[1] > 1+1+1+1+1 {
		t.Errorf("acceptor's Logon MsgSeqNums %v, want [1 4 or 5]", got)
	}
	accLog := filepath.Join(dir, "acc-log", "FIXT.1.1-FFSTORE-STORECLI.messages.log")
	b, err := os.ReadFile(accLog)
	if err != nil || !strings.Contains(string(b), "|262=after|") || strings.Contains(string(b), "554=demo") {
		t.Errorf("acceptor's message log (%v): want the request after the restart, the password hidden:\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "acc-store", "FIXT.1.1-FFSTORE-STORECLI.senderseqnums")); err != nil {
		t.Errorf("acceptor's file store: %v", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
