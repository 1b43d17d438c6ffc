package fixsession

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastfeed/internal/fdtest"
)

// The attacks of issue 18 on an Acceptor, over TCP on 127.0.0.0/8: clients take
// source addresses 127.0.0.2 and up, so that the cap per source does not hide the
// outcome of the attack itself.

// startGuarded starts an acceptor with limits whose log goes to the returned buffer.
func startGuarded(t *testing.T, h Handler, limits Limits) (*Acceptor, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	a, err := NewAcceptor(AcceptorConfig{
		Listen:      "127.0.0.1:0",
		CompID:      RecoveryCompID,
		Credentials: StaticCredentials(DemoUsername, DemoPassword),
		Limits:      limits,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, "acceptor", a.Stop) })
	return a, logs
}

// dialFrom connects to addr from source address 127.0.0.(2+src%250).
func dialFrom(addr string, src int) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+src%250))}}
	return d.Dial("tcp", addr)
}

func mustDial(t *testing.T, addr string, src int) net.Conn {
	t.Helper()
	c, err := dialFrom(addr, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawLogon is a Logon from sender with extra body fields appended.
func rawLogon(sender string, extra ...string) []byte {
	fields := []string{"35=A", "49=" + sender, "56=" + RecoveryCompID, "34=1",
		"52=" + time.Now().UTC().Format("20060102-15:04:05.000"), "98=0", "108=30", "141=Y", "1137=9"}
	return fixMsg(append(fields, extra...)...)
}

// readUntil reads messages from c until one of MsgType typ, skipping heartbeats and test
// requests.
func readUntil(t *testing.T, c net.Conn, typ string, timeout time.Duration) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	fr := NewFrameReader(c, 0)
	for {
		m, err := fr.Next()
		if err != nil {
			t.Fatalf("waiting for MsgType %s from %v: %v", typ, c.LocalAddr(), err)
		}
		if got := msgType(m); got == typ {
			return bytes.Clone(m)
		} else if got != "0" && got != "1" {
			t.Fatalf("waiting for MsgType %s, got %q", typ, printable(m))
		}
	}
}

// closedByPeer waits until the acceptor closes c; it returns what c read before.
func closedByPeer(t *testing.T, c net.Conn, timeout time.Duration) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection %v not closed by the acceptor within %v", c.LocalAddr(), timeout)
	}
	return b
}

// waitUntil polls cond until it holds or timeout passes; it reports whether it held.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// logOn logs on as sender with the demo login on a new connection from src and returns
// it once the acceptor's Logon arrived.
func logOn(t *testing.T, a *Acceptor, sender string, src int) net.Conn {
	t.Helper()
	c := mustDial(t, a.Addr(), src)
	if _, err := c.Write(rawLogon(sender, "553="+DemoUsername, "554="+DemoPassword)); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "A", 10*time.Second)
	return c
}

// TestRepeatedFieldLogon sends the Logons of issue 18, hole 1: each is answered with a
// Logout giving the reason, counted, and never reaches quickfix; a good Logon's
// Identity is its Username.
func TestRepeatedFieldLogon(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	a, logs := startGuarded(t, rec, Limits{})
	for i, extra := range [][]string{
		{"553=demo", "553=fx", "554=fx", "1137=9"},
		{"58=x", "553=demo", "553=fx", "554=fx"},
		{"553=demo", "554=demo", "554=demo"},
	} {
		c := mustDial(t, a.Addr(), i)
		b := fixMsg(append([]string{"35=A", "49=" + fmt.Sprintf("EVE%d", i), "56=" + RecoveryCompID, "34=1",
			"52=" + time.Now().UTC().Format("20060102-15:04:05.000"), "98=0", "108=30"}, extra...)...)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		out := closedByPeer(t, c, 5*time.Second)
		if msgType(out) != "5" || !strings.Contains(field(out, 58), "Logon (A) repeats") {
			t.Fatalf("Logon %q answered with %q, want a Logout saying the Logon repeats a tag", printable(b), printable(out))
		}
	}
	st := a.Stats()
	if st.LogonsRefused != 3 || st.Malformed != 0 {
		t.Errorf("LogonsRefused %d, Malformed %d; want 3 and 0", st.LogonsRefused, st.Malformed)
	}
	if !strings.Contains(logs.String(), "repeats Username (553)") {
		t.Errorf("no log line of the refusal:\n%s", logs)
	}
	select {
	case id := <-rec.logons:
		t.Fatalf("a Logon with a repeated tag logged on as %v", id)
	default:
	}
	logOn(t, a, "ALICE", 9)
	id := wait(t, rec.logons, "logon")
	if got, ok := a.Identity(id); !ok || got.Username != DemoUsername {
		t.Errorf("Identity(%v) = %+v, %v; want Username %q", id, got, ok, DemoUsername)
	}
}

// heapInUse returns the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestHugeBodyLengthBeforeLogon is issue 18, hole 4: 200 connections each announce a
// 1,000,000-byte Logon and send 999,000 bytes of it. Each is closed at its BodyLength,
// and the heap does not grow by the bytes sent (it grew by 331 MB before the fix).
func TestHugeBodyLengthBeforeLogon(t *testing.T) {
	a, logs := startGuarded(t, newRecorder(), Limits{})
	head := []byte("8=FIXT.1.1\x019=1000000\x0135=A\x01")
	rest := bytes.Repeat([]byte("x"), 999_000)
	before := heapInUse()
	var peak atomic.Uint64
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		for a.Stats().Malformed < 200 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i := range 200 {
		wg.Go(func() {
			c, err := dialFrom(a.Addr(), i)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			n, _ := c.Write(head)
			m, _ := c.Write(rest) // fails once the acceptor has closed
			sent.Add(int64(n + m))
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(io.Discard, c)
		})
	}
	wg.Wait()
	waitFor(t, func() bool { return a.Stats().Malformed >= 200 }, "200 refusals")
	<-sampling
	after := heapInUse()
	st := a.Stats()
	t.Logf("heap in use: %.1f MB before, %.1f MB at the peak, %.1f MB after; %.1f MB written by the clients before the acceptor closed",
		float64(before)/1e6, float64(peak.Load())/1e6, float64(after)/1e6, float64(sent.Load())/1e6)
	if st.Malformed != 200 || st.Refused != 0 {
		t.Errorf("Malformed %d, Refused %d; want 200 and 0", st.Malformed, st.Refused)
	}
	waitFor(t, func() bool { return a.Stats().Open == 0 }, "no connection open")
	if grew := int64(peak.Load()) - int64(before); grew > 32<<20 {
		t.Errorf("the heap grew by %d MB at its peak", grew>>20)
	}
	if !strings.Contains(logs.String(), "BodyLength 1000000 makes a message of 1000028 bytes, over the limit of 4096") {
		t.Errorf("no log line of the refusal:\n%.2000s", logs)
	}
	logOn(t, a, "AFTER", 0)
}

// TestMiBLogonRefusedUnparsed is issue 18, hole 4: twenty 1 MiB Logons of 110,000
// fields are refused at their BodyLength, before a byte of the body is parsed, and
// never reach quickfix.
func TestMiBLogonRefusedUnparsed(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	a, logs := startGuarded(t, rec, Limits{})
	fields := []string{"35=A", "49=BIG", "56=" + RecoveryCompID, "34=1", "52=20260101-00:00:00", "98=0", "108=30", "553=demo", "554=demo"}
	for i := range 110_000 {
		fields = append(fields, fmt.Sprintf("%d=vvv", 10000+i))
	}
	big := fixMsg(fields...)
	if len(big) < 1<<20 || CheckFrame(big) != nil {
		t.Fatalf("test Logon of %d bytes: %v", len(big), CheckFrame(big))
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			c, err := dialFrom(a.Addr(), i)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_, _ = c.Write(big)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if b, _ := io.ReadAll(c); len(b) > 0 {
				t.Errorf("the acceptor answered a 1 MiB Logon with %q", printable(b))
			}
		})
	}
	wg.Wait()
	waitFor(t, func() bool { return a.Stats().Malformed >= 20 }, "20 refusals")
	st := a.Stats()
	if st.Malformed != 20 || st.LogonsRefused != 0 {
		t.Errorf("Malformed %d, LogonsRefused %d: want 20 refused by the guard, none by quickfix", st.Malformed, st.LogonsRefused)
	}
	want := fmt.Sprintf("makes a message of %d bytes, over the limit of 4096", len(big))
	if n := strings.Count(logs.String(), want); n != 20 {
		t.Errorf("%d log lines %q, want 20:\n%.2000s", n, want, logs)
	}
	select {
	case id := <-rec.logons:
		t.Fatalf("logged on %v", id)
	default:
	}
}

// TestIdleLogonsBounded: connections that send nothing, or a Logon one byte at a time,
// are closed at Limits.LogonTimeout from their accept.
func TestIdleLogonsBounded(t *testing.T) {
	t.Parallel()
	a, _ := startGuarded(t, newRecorder(), Limits{LogonTimeout: 500 * time.Millisecond})
	const idle = 100
	var wg sync.WaitGroup
	for i := range idle {
		c := mustDial(t, a.Addr(), i)
		wg.Go(func() { closedByPeer(t, c, 10*time.Second) })
	}
	slow := mustDial(t, a.Addr(), idle)
	wg.Go(func() {
		// A valid Logon at 20 bytes a second would take about 10 s.
		for _, b := range rawLogon("SLOW", "553=demo", "554=demo") {
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Error("the slow Logon was read to its end")
	})
	wg.Go(func() { closedByPeer(t, slow, 10*time.Second) })
	wg.Wait()
	waitFor(t, func() bool { return a.Stats().Open == 0 }, "no connection open")
	if st := a.Stats(); st.LogonTimeouts != idle+1 || st.Malformed != 0 {
		t.Errorf("LogonTimeouts %d, Malformed %d; want %d and 0", st.LogonTimeouts, st.Malformed, idle+1)
	}
}

// TestConnectionCaps: connections beyond Limits.MaxConnectionsPerSource from one
// address, or beyond MaxConnections in all, are closed at once and counted; once they
// are gone, a Logon is answered.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	a, logs := startGuarded(t, newRecorder(), Limits{MaxConnections: 12, MaxConnectionsPerSource: 5})
	var conns []net.Conn
	for i := range 5 { // source 0: 5 taken
		conns = append(conns, mustDial(t, a.Addr(), 0))
		_ = i
	}
	waitFor(t, func() bool { return a.Stats().Open == 5 }, "5 open")
	extra := mustDial(t, a.Addr(), 0) // the 6th from source 0
	closedByPeer(t, extra, 5*time.Second)
	for i := range 7 { // sources 1..7: 7 more, 12 in all
		conns = append(conns, mustDial(t, a.Addr(), 1+i))
	}
	waitFor(t, func() bool { return a.Stats().Open == 12 }, "12 open")
	over := mustDial(t, a.Addr(), 20)
	closedByPeer(t, over, 5*time.Second)
	if st := a.Stats(); st.Refused != 2 {
		t.Errorf("Refused %d, want 2", st.Refused)
	}
	for _, want := range []string{"5 connections open from 127.0.0.2, the most allowed from one address", "12 connections open, the most allowed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log line %q:\n%s", want, logs)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, func() bool { return a.Stats().Open == 0 }, "no connection open")
	logOn(t, a, "AFTERCAP", 0)
}

// TestGarbledBeforeLogon is issue 18, hole 4: for 3 s, clients send messages with a
// wrong CheckSum before any Logon. Each connection is closed at its third, and the log
// holds at most Limits.LogLinesPerSecond lines per cause and second, the rest counted.
func TestGarbledBeforeLogon(t *testing.T) {
	t.Parallel()
	a, logs := startGuarded(t, newRecorder(), Limits{})
	bad := fixMsgWith("", -1, 0, "35=A", "49=GARBLE", "56="+RecoveryCompID, "34=1", "52=20260101-00:00:00")
	if fe := (*FrameError)(nil); !errors.As(CheckFrame(bad), &fe) || !fe.Garbled {
		t.Fatalf("test message is not garbled: %v", CheckFrame(bad))
	}
	flood := bytes.Repeat(bad, 100)
	heapBefore := heapInUse()
	const seconds = 3
	start := time.Now()
	var conns atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for time.Since(start) < seconds*time.Second {
				c, err := dialFrom(a.Addr(), w)
				if err != nil {
					t.Error(err)
					return
				}
				conns.Add(1)
				_, _ = c.Write(flood)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				var ne net.Error
				if _, err := io.Copy(io.Discard, c); errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("a flooding connection was not closed: %v", err) // reset or ended: closed
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	waitFor(t, func() bool { return a.Stats().Open == 0 }, "no connection open")
	heapAfter := heapInUse()
	t.Logf("heap in use %.1f MB before, %.1f MB after", float64(heapBefore)/1e6, float64(heapAfter)/1e6)
	if grew := int64(heapAfter) - int64(heapBefore); grew > 16<<20 {
		t.Errorf("the heap grew by %d MB and stayed", grew>>20)
	}
	st := a.Stats()
	lines := strings.Count(logs.String(), "\n")
	dropped := strings.Count(logs.String(), "fix message dropped")
	refused := strings.Count(logs.String(), "fix message refused")
	t.Logf("%.1f s, %d connections: %d garbled messages read, %d log lines (%d dropped, %d closed), %d suppressed",
		elapsed.Seconds(), conns.Load(), st.Garbled, lines, dropped, refused, st.LogSuppressed)
	if st.Malformed != uint64(conns.Load()) || st.Garbled != 3*uint64(conns.Load()) {
		t.Errorf("Malformed %d, Garbled %d; want every one of %d connections closed at its third garbled message",
			st.Malformed, st.Garbled, conns.Load())
	}
	perCause := DefaultLogLinesPerSecond * (int(elapsed.Seconds()) + 2)
	if dropped > perCause || refused > perCause {
		t.Errorf("%d and %d log lines for two causes in %v, want at most %d each", dropped, refused, elapsed, perCause)
	}
	if st.LogSuppressed == 0 || uint64(dropped+refused)+st.LogSuppressed != 3*uint64(conns.Load()) {
		t.Errorf("%d lines written + %d suppressed, want %d (one per garbled message)", dropped+refused, st.LogSuppressed, 3*conns.Load())
	}
}

// TestDescriptorExhaustion is issue 18, hole 2, under RLIMIT_NOFILE 1024 as with
// `ulimit -n 1024`:
//   - 400 connections that send nothing, then close: with the default limits, those over
//     the cap are closed at once; afterwards a Logon is answered and the acceptor holds
//     no more descriptors than before;
//   - with a cap above the descriptors there are: accepting fails (EMFILE), is retried
//     with back-off, logged once, and works again once descriptors are free;
//   - quickfix's own accept loop failing (EMFILE) ends it for good: the acceptor starts
//     another quickfix acceptor and the Logon waiting on the dead one is answered.
func TestDescriptorExhaustion(t *testing.T) {
	if !fdtest.Child(t, 1024) {
		return
	}
	t.Run("cap", func(t *testing.T) {
		if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
			ln.Close() // the runtime's poller is opened with the first socket: not the acceptor's
		}
		base := fdtest.Open(t)
		a, _ := startGuarded(t, newRecorder(), Limits{})
		lim := a.Limits()
		if lim.MaxConnections != (1024-fdReserve)/fdsPerConnection || lim.MaxConnectionsPerSource != DefaultMaxConnectionsPerSource {
			t.Fatalf("default limits %+v under RLIMIT_NOFILE 1024", lim)
		}
		started := fdtest.Open(t)
		startedList := fdtest.List()
		var conns []net.Conn
		for i := range 400 {
			c, err := dialFrom(a.Addr(), i%10)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		waitFor(t, func() bool {
			st := a.Stats()
			return st.Connections == 400 && st.Open+st.Refused == 400
		}, "every connection accepted or refused")
		st := a.Stats()
		if int(st.Open) != lim.MaxConnections || st.Refused != uint64(400-lim.MaxConnections) {
			t.Errorf("Open %d, Refused %d; want %d and %d", st.Open, st.Refused, lim.MaxConnections, 400-lim.MaxConnections)
		}
		t.Logf("400 idle connections: %d open, %d refused, %d descriptors open in the process (%d of them the clients')",
			st.Open, st.Refused, fdtest.Open(t), len(conns))
		for _, c := range conns {
			c.Close()
		}
		waitFor(t, func() bool { return a.Stats().Open == 0 }, "no connection open")
		c := logOn(t, a, "AFTER400", 0)
		c.Close()
		// io.Copy between TCP connections splices through pipes that Go caches until
		// a collection or two: they are not the acceptor's.
		if !waitUntil(10*time.Second, func() bool { runtime.GC(); return fdtest.Open(t) <= started }) {
			t.Fatalf("%d descriptors open, %d before the attack:\n%s\nbefore:\n%s", fdtest.Open(t), started, fdtest.List(), startedList)
		}
		stop(t, "acceptor", a.Stop)
		if !waitUntil(5*time.Second, func() bool { runtime.GC(); return fdtest.Open(t) <= base }) {
			t.Errorf("%d descriptors open after Stop, %d before Start:\n%s", fdtest.Open(t), base, fdtest.List())
		}
	})
	t.Run("accept errors", func(t *testing.T) {
		a, logs := startGuarded(t, newRecorder(), Limits{MaxConnections: 5000, MaxConnectionsPerSource: 5000})
		release := fdtest.Exhaust(t, 1)
		c, err := dialFrom(a.Addr(), 0) // takes the last descriptor: the acceptor has none
		if err != nil {
			release()
			t.Fatal(err)
		}
		defer c.Close()
		waitFor(t, func() bool { return a.Stats().AcceptErrors >= 5 }, "accept errors")
		release()
		if _, err := c.Write(rawLogon("AFTEREMFILE", "553=demo", "554=demo")); err != nil {
			t.Fatal(err)
		}
		readUntil(t, c, "A", 10*time.Second)
		st := a.Stats()
		t.Logf("%d failed accepts, logged: %q", st.AcceptErrors, logs)
		if n := strings.Count(logs.String(), "fix accept failing"); n != 1 {
			t.Errorf("%d log lines of the failing accepts, want 1", n)
		}
		if !strings.Contains(logs.String(), fmt.Sprintf("failed_accepts=%d", st.AcceptErrors)) {
			t.Errorf("no log line of accepting again after %d failures:\n%s", st.AcceptErrors, logs)
		}
	})
	t.Run("quickfix accept loop", func(t *testing.T) {
		rec := newRecorder()
		logs := &lockedBuffer{}
		a, err := NewAcceptor(AcceptorConfig{Listen: "127.0.0.1:0", CompID: RecoveryCompID,
			Credentials: StaticCredentials(DemoUsername, DemoPassword),
			Logger:      slog.New(slog.NewTextHandler(logs, nil))}, rec)
		if err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		a.beforeDial = func() {
			once.Do(func() {
				// The guard's connection to quickfix takes the last descriptor, so
				// quickfix's accept fails and its accept loop ends.
				release := fdtest.Exhaust(t, 1)
				time.AfterFunc(500*time.Millisecond, release)
			})
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer stop(t, "acceptor", a.Stop)
		logOn(t, a, "DEADLOOP", 0)
		logOn(t, a, "NEXT", 1)
		if st := a.Stats(); st.BackendRestarts != 1 || st.BackendFailures != 0 {
			t.Errorf("BackendRestarts %d, BackendFailures %d; want 1 and 0", st.BackendRestarts, st.BackendFailures)
		}
		if !strings.Contains(logs.String(), "quickfix stopped accepting, starting another") {
			t.Errorf("no log line of the restart:\n%s", logs)
		}
	})
}
