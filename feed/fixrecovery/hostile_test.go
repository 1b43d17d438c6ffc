package fixrecovery

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"fastfeed/internal/fixsession"
)

// rawFIX frames body (from "35=" on) as FIXT.1.1 with a right CheckSum.
func rawFIX(body string) []byte {
	head := fmt.Sprintf("8=%s\x019=%d\x01", fixsession.BeginString, len(body))
	sum := 0
	for _, c := range []byte(head + body) {
		sum += int(c)
	}
	return fmt.Appendf(nil, "%s%s10=%03d\x01", head, body, sum%256)
}

// hostileService is a recovery service that logs clients on and answers every request
// with malformed FIX: an XmlDataLen (212) that overruns its message, on which quickfix
// v0.9.7 panics while parsing.
func hostileService(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	now := func() string { return time.Now().UTC().Format("20060102-15:04:05.000") }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fr := fixsession.NewFrameReader(c, 0)
				defer fr.Release()
				var client string
				for seq := 1; ; seq++ {
					_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
					b, err := fr.Next()
					if err != nil {
						return
					}
					if client == "" {
						client = field(b, "49")
					}
					var out []byte
					switch field(b, "35") {
					case "A":
						out = rawFIX(fmt.Sprintf("35=A\x0134=%d\x0149=%s\x0152=%s\x0156=%s\x0198=0\x01108=30\x011137=9\x01",
							seq, fixsession.RecoveryCompID, now(), client))
					case "V":
						out = rawFIX(fmt.Sprintf("35=X\x0134=%d\x0149=%s\x0152=%s\x0156=%s\x01212=4096\x01213=<x/>\x01",
							seq, fixsession.RecoveryCompID, now(), client))
					default:
						seq--
						continue
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// field returns the value of tag in a raw message ("" if none).
func field(b []byte, tag string) string {
	key := "\x01" + tag + "="
	s := string(b)
	for i := 0; i+len(key) <= len(s); i++ {
		if s[i:i+len(key)] == key {
			v := s[i+len(key):]
			for j := 0; j < len(v); j++ {
				if v[j] == 1 {
					return v[:j]
				}
			}
			return v
		}
	}
	return ""
}

// TestHostileService: a recovery service answering with malformed FIX never crashes the
// handler's client: each malformed answer is counted by the framing guard and closes
// the connection, the client reconnects and asks again, and the request ends Failed so
// that the handler falls back to snapshots.
func TestHostileService(t *testing.T) {
	sink := &testSink{}
	c := startClient(t, Config{Connect: hostileService(t), SenderCompID: "HOSTILE-VICTIM", ReconnectInterval: 200 * time.Millisecond,
		Timeout: 5 * time.Second}, sink)
	c.Retransmit("G1:1", 10, 20)
	got := sink.await(t, "G1:1", 1)
	if len(got) != 1 || !got[0].failed || got[0].snapshot {
		t.Fatalf("results %v, want the retransmission Failed", got)
	}
	st := c.GuardStats()
	if st.Malformed < 1 || st.Connections < 2 {
		t.Errorf("guard stats %+v: want the malformed answers counted and a reconnection", st)
	}
	t.Logf("request ended %v; guard stats %+v", got[0], st)
}
