package fixsession

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixMessage frames body (from "35=" on, fields ending in SOH) as FIXT.1.1 with a right
// CheckSum.
func fixMessage(body string) []byte {
	head := fmt.Sprintf("8=%s\x019=%d\x01", BeginString, len(body))
	sum := 0
	for _, c := range []byte(head + body) {
		sum += int(c)
	}
	return fmt.Appendf(nil, "%s%s10=%03d\x01", head, body, sum%256)
}

// hostileService accepts connections on loopback, reads each one's Logon and answers
// with answer(n), n counting connections from 1; it closes a connection after a second.
func hostileService(t *testing.T, answer func(n int) []byte) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu sync.Mutex
		n  int
		wg sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			k := n
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(time.Second))
				fr := NewFrameReader(c, 0)
				defer fr.Release()
				if _, err := fr.Next(); err != nil {
					return
				}
				_, _ = c.Write(answer(k))
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

const hostileCompID = "HOSTILE"

// logonReply is a well-formed Logon answer of the hostile service to client cli.
func logonReply(cli string, seq int) []byte {
	return fixMessage(fmt.Sprintf("35=A\x0134=%d\x0149=%s\x0152=%s\x0156=%s\x0198=0\x01108=10\x011137=9\x01",
		seq, hostileCompID, time.Now().UTC().Format("20060102-15:04:05.000"), cli))
}

// TestInitiatorGuardMalformed: a recovery service that answers with malformed FIX (an
// empty MsgSeqNum, on which quickfix v0.9.7 panics; an XmlDataLen that overruns the
// message after a good Logon) is counted and disconnected by the framing guard; the
// initiator reconnects and the process lives on.
func TestInitiatorGuardMalformed(t *testing.T) {
	t.Parallel()
	const cli = "GUARDCLI"
	now := func() string { return time.Now().UTC().Format("20060102-15:04:05.000") }
	addr, conns := hostileService(t, func(n int) []byte {
		if n%2 == 1 {
			return fixMessage("35=A\x0134=\x0149=" + hostileCompID + "\x0152=" + now() + "\x0156=" + cli + "\x0198=0\x01108=10\x01")
		}
		return append(logonReply(cli, 1),
			fixMessage("35=W\x0134=2\x0149="+hostileCompID+"\x0152="+now()+"\x0156="+cli+"\x01212=999\x01213=<x/>\x01")...)
	})
	rec := newRecorder()
	ini := startInitiator(t, context.Background(), InitiatorConfig{Connect: addr, SenderCompID: cli, TargetCompID: hostileCompID,
		Username: DemoUsername, Password: DemoPassword, ReconnectInterval: time.Second, LogonTimeout: 2 * time.Second}, rec)
	wait(t, rec.logons, "the logon of the second connection")
	wait(t, rec.logouts, "the end of the session on the malformed message")
	deadline := time.Now().Add(10 * time.Second)
	for (ini.Stats().Malformed < 2 || conns() < 3) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st := ini.Stats()
	if st.Malformed < 2 || st.Connections < 3 || conns() < 3 {
		t.Fatalf("stats %+v after %d connections: want 2 malformed messages counted and a reconnect after each", st, conns())
	}
	if !strings.Contains(st.LastError, "malformed FIX message") {
		t.Errorf("LastError %q", st.LastError)
	}
}

// TestInitiatorGuardGarbled: a message with a wrong CheckSum is dropped and counted, the
// connection kept.
func TestInitiatorGuardGarbled(t *testing.T) {
	t.Parallel()
	const cli = "GARBLECLI"
	addr, _ := hostileService(t, func(int) []byte {
		bad := fixMessage("35=0\x0134=2\x0149=" + hostileCompID + "\x0152=20250101-00:00:00.000\x0156=" + cli + "\x01")
		bad[len(bad)-2]++ // the CheckSum's last digit
		return append(bad, logonReply(cli, 1)...)
	})
	rec := newRecorder()
	ini := startInitiator(t, context.Background(), InitiatorConfig{Connect: addr, SenderCompID: cli, TargetCompID: hostileCompID,
		ReconnectInterval: time.Second}, rec)
	wait(t, rec.logons, "logon after the garbled message")
	if st := ini.Stats(); st.Garbled != 1 || st.Malformed != 0 {
		t.Errorf("stats %+v, want 1 garbled, 0 malformed", st)
	}
}

// TestInitiatorNoGuardCrashes shows what the guard prevents: without it, the
// XmlDataLen that overruns its message kills the process (run as a child process).
func TestInitiatorNoGuardCrashes(t *testing.T) {
	if os.Getenv("FIXSESSION_NOGUARD_CHILD") == "1" {
		const cli = "NOGUARDCLI"
		addr, _ := hostileService(t, func(int) []byte {
			return append(logonReply(cli, 1),
				fixMessage("35=W\x0134=2\x0149="+hostileCompID+"\x0152=20250101-00:00:00.000\x0156="+cli+"\x01212=999\x01213=<x/>\x01")...)
		})
		ini, err := NewInitiator(InitiatorConfig{Connect: addr, SenderCompID: cli, TargetCompID: hostileCompID, GuardOff: true}, newRecorder())
		if err != nil {
			t.Fatal(err)
		}
		if err := ini.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		ini.Stop()
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestInitiatorNoGuardCrashes$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FIXSESSION_NOGUARD_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "panic") || !strings.Contains(string(out), "extractXMLDataField") {
		t.Fatalf("without the guard the child survived (err %v):\n%s", err, out)
	}
}
