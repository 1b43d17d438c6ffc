package publisher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quickfixgo/quickfix"
	"golang.org/x/sys/unix"

	"fastfeed/internal/fixsession"
	"fastfeed/internal/fixtest"
	"fastfeed/internal/netns"
)

// TestRecoveryServiceSlowClientAttack performs the attack of issue 18, hole 3: logged on
// with a 4 KB receive buffer, a client sends 8 MarketDataRequests of 10,000 numbers each
// and reads 4 KB every 0.5 s. Another client's 5-number request must be answered in its
// usual time meanwhile; the slow client must be logged out with the reason once it has
// taken less than MinRate over RateWindow (shortened here), and counted; the service must
// not spin while it waits for the slow client.
func TestRecoveryServiceSlowClientAttack(t *testing.T) {
	netns.Require(t)
	const count, span = 11000, 10000
	p := newPublisher(t, Config{Instruments: generate(t, 1), Count: count, Retention: count + 1000, MaxRetransmit: span,
		Recovery: RecoveryConfig{Listen: "127.0.0.1:0", Users: []User{{fixsession.DemoUsername, fixsession.DemoPassword}}}})
	if err := p.Run(context.Background()); err != nil { // the data; requests are served from the final state
		t.Fatal(err)
	}
	var logs fixtest.LogBuffer
	const window = 2 * time.Second
	svc := startService(t, p, RecoveryOptions{RateWindow: window, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var channel string
	for _, ci := range p.Channels() {
		if !ci.Definitions {
			channel = ci.Name
		}
	}
	tg := fixtest.Target{Addr: svc.Addr(), CompID: fixsession.RecoveryCompID}
	other := fixtest.Dial(t, tg, "T-OTHER")
	other.Logon(t, fixsession.DemoUsername, fixsession.DemoPassword)
	before := askFive(t, other, channel, "before")

	// The attack.
	slow := dialSmallBuffer(t, svc.Addr(), 4096)
	slow.logon(t)
	for i := range 8 {
		beg := 1000 + i*100
		slow.send(t, "35=V", fmt.Sprintf("262=slow-%d", i), "263=0", "264=0", "267=2", "269=0", "269=1",
			"1180="+channel, fmt.Sprintf("1182=%d", beg), fmt.Sprintf("1183=%d", beg+span-1))
	}
	cut := make(chan struct{})
	var got bytes.Buffer
	readerDone := make(chan error, 1)
	go func() { readerDone <- slow.readSlowly(&got, cut) }()
	// Let the service fill what the slow client and the kernel hold.
	for deadline := time.Now().Add(10 * time.Second); svc.acc.InFlight(slow.id()) < DefaultRecoveryInFlight/2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow client's answer never queued up: in flight %d, retransmitted %d", svc.acc.InFlight(slow.id()), svc.Stats().Retransmitted)
		}
	}
	during := askFive(t, other, channel, "during")
	t.Logf("the other client's 5-number answer: %v alone, %v while the slow client is behind", before, during)
	if during > 2*time.Second {
		t.Errorf("the other client waited %v for its 5-number answer while the slow client was connected", during)
	}

	// The service waits for the slow client without spinning, then cuts it off.
	cpu0, wall0 := cpuTime(t), time.Now()
	for deadline := time.Now().Add(3*window + 10*time.Second); svc.Stats().TooSlow == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow client was not cut off; in flight %d, retransmitted %d\n%s", svc.acc.InFlight(slow.id()), svc.Stats().Retransmitted, logs.String())
		}
	}
	cores := (cpuTime(t) - cpu0).Seconds() / time.Since(wall0).Seconds()
	t.Logf("CPU while waiting for the slow client: %.3f cores over %v", cores, time.Since(wall0).Round(time.Millisecond))
	if cores > 0.25 {
		t.Errorf("the process used %.2f cores while the service waited for a slow client", cores)
	}
	close(cut) // the slow client now reads all that is left: the Logout, then the end
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	logout := lastLogout(got.Bytes())
	if logout == nil {
		t.Fatalf("the slow client got no Logout; the stream (%d bytes) ends %q", got.Len(), tail(got.Bytes()))
	}
	if text := fixtest.Field(logout, 58); !strings.Contains(text, "too slow") || !strings.Contains(text, "KiB/s") {
		t.Errorf("the Logout's Text %q does not give the reason", text)
	}
	st := svc.Stats()
	if st.TooSlow != 1 {
		t.Errorf("TooSlow %d, want 1", st.TooSlow)
	}
	if st.Retransmitted >= 8*span/2 {
		t.Errorf("retransmitted %d: the answers were queued for a client that does not take them", st.Retransmitted)
	}
	if !strings.Contains(logs.String(), "too slow to take its answer") {
		t.Errorf("the cut-off was not logged:\n%s", logs.String())
	}
	for deadline := time.Now().Add(10 * time.Second); slices.Contains(svc.acc.Sessions(), slow.id()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow client's session did not end")
		}
	}
	// The service goes on serving.
	if after := askFive(t, other, channel, "after"); after > 2*time.Second {
		t.Errorf("the other client waited %v after the slow client was cut off", after)
	}
}

// askFive asks c for a retransmission of 5 sequence numbers of channel and returns the
// time the whole answer took.
func askFive(t *testing.T, c *fixtest.Client, channel, id string) time.Duration {
	t.Helper()
	start := time.Now()
	c.Write(t, c.Message("35=V", "262="+id, "263=0", "264=0", "267=2", "269=0", "269=1", "1180="+channel, "1182=2000", "1183=2004"))
	for want := 2000; want <= 2004; {
		msg, err := c.Read(10 * time.Second)
		if err != nil {
			t.Fatalf("request %s: waiting for ApplSeqNum %d: %v", id, want, err)
		}
		switch fixtest.Field(msg, 35) {
		case "0", "1":
			continue
		case "X":
		default:
			t.Fatalf("request %s: got %q", id, bytes.ReplaceAll(msg, []byte{1}, []byte{'|'}))
		}
		if fixtest.Field(msg, 262) != id || fixtest.Field(msg, 1181) != fmt.Sprint(want) {
			t.Fatalf("request %s: got MDReqID %s ApplSeqNum %s, want ApplSeqNum %d", id, fixtest.Field(msg, 262), fixtest.Field(msg, 1181), want)
		}
		want++
	}
	return time.Since(start)
}

// slowClient is the attacker: a FIX client with a small receive buffer that reads raw
// bytes.
type slowClient struct {
	conn   net.Conn
	sender string
	seq    int
}

// dialSmallBuffer connects with a receive buffer of rcvbuf bytes, set before the
// connection is made so that the window offered is small from the start.
func dialSmallBuffer(t *testing.T, addr string, rcvbuf int) *slowClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
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
	return &slowClient{conn: conn, sender: "T-ATTACK"}
}

func (c *slowClient) id() quickfix.SessionID {
	return quickfix.SessionID{BeginString: fixsession.BeginString, SenderCompID: fixsession.RecoveryCompID, TargetCompID: c.sender}
}

func (c *slowClient) send(t *testing.T, fields ...string) {
	t.Helper()
	c.seq++
	header := []string{fields[0], "49=" + c.sender, "56=" + fixsession.RecoveryCompID, fmt.Sprintf("34=%d", c.seq),
		"52=" + time.Now().UTC().Format("20060102-15:04:05.000")}
	if _, err := c.conn.Write(fixtest.Frame(append(header, fields[1:]...)...)); err != nil {
		t.Fatal(err)
	}
}

// logon logs on and reads the acceptor's Logon.
func (c *slowClient) logon(t *testing.T) {
	t.Helper()
	c.send(t, "35=A", "98=0", "108=30", "141=Y", "1137=9", "553="+fixsession.DemoUsername, "554="+fixsession.DemoPassword)
	fr := fixsession.NewFrameReader(c.conn, 1<<16)
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := fr.Next()
	if err != nil || fixtest.Field(msg, 35) != "A" {
		t.Fatalf("logon: got %q, %v", msg, err)
	}
	_ = c.conn.SetReadDeadline(time.Time{})
}

// readSlowly reads 4 KB every 0.5 s into got until cut is closed, then reads the rest
// at full speed until the connection ends.
func (c *slowClient) readSlowly(got *bytes.Buffer, cut <-chan struct{}) error {
	buf := make([]byte, 4096)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for slow := true; ; {
		if slow {
			select {
			case <-tick.C:
			case <-cut:
				slow = false
			}
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := c.conn.Read(buf)
		got.Write(buf[:n])
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			return nil
		case err != nil:
			return fmt.Errorf("the slow client's connection: %w (read %d bytes)", err, got.Len())
		}
	}
}

// lastLogout returns the last Logout (35=5) in a raw stream, nil if none.
func lastLogout(b []byte) []byte {
	i := bytes.LastIndex(b, []byte("\x0135=5\x01"))
	if i < 0 {
		return nil
	}
	start := bytes.LastIndex(b[:i], []byte("8=FIXT.1.1\x01"))
	if start < 0 {
		return nil
	}
	return b[start:]
}

func tail(b []byte) []byte { return b[max(0, len(b)-200):] }

func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
