// Package fixtest tests a fastfeed FIX acceptor (internal/fixsession) against malformed
// input from raw TCP clients, the way net/http/httptest serves HTTP tests: the publisher's
// recovery service and the handler's OMS service run the same table.
//
// Each case connects a raw client, sends one kind of bad input, and checks the outcome:
// the connection closed by the acceptor's guard, the message dropped or rejected with
// the session kept, and a counter and a log line recording it. A well-behaved client
// logged on for the whole run must keep getting answers. The acceptor runs in the test's
// process, so a panic anywhere in it fails the test binary.
package fixtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"fastfeed/internal/fixsession"
)

// Target is the acceptor under test.
type Target struct {
	Addr     string // host:port
	CompID   string // the acceptor's CompID
	Username string // a login the acceptor accepts
	Password string
	// Stats returns the acceptor's counters.
	Stats func() fixsession.AcceptorStats
	// Logs returns what the acceptor logged so far, as slog text or JSON.
	Logs func() string
}

// LogBuffer is a bytes.Buffer safe for concurrent use: the sink of an acceptor's logger
// whose lines a test reads (Target.Logs).
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Client is a raw FIX client: it frames messages itself, so it can send anything.
type Client struct {
	conn           net.Conn
	fr             *fixsession.FrameReader
	sender, target string
	seq            int
}

// Dial connects a raw client with SenderCompID sender to t.
func Dial(t testing.TB, tg Target, sender string) *Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", tg.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Client{conn: conn, fr: fixsession.NewFrameReader(conn, 1<<20), sender: sender, target: tg.CompID}
}

// Close closes the client's connection.
func (c *Client) Close() { c.conn.Close() }

// LocalAddr is the client's address, as the acceptor logs it.
func (c *Client) LocalAddr() string { return c.conn.LocalAddr().String() }

// Message returns a message of body fields ("tag=value", the first MsgType) with a
// header for the next sequence number, BodyLength and CheckSum.
func (c *Client) Message(fields ...string) []byte {
	c.seq++
	header := []string{fields[0], "49=" + c.sender, "56=" + c.target, fmt.Sprintf("34=%d", c.seq),
		"52=" + time.Now().UTC().Format("20060102-15:04:05.000")}
	return Frame(append(header, fields[1:]...)...)
}

// Frame builds a FIXT.1.1 message of fields ("tag=value") with the right BodyLength and
// CheckSum.
func Frame(fields ...string) []byte {
	var body []byte
	for _, f := range fields {
		body = append(body, f...)
		body = append(body, 1)
	}
	b := fmt.Appendf(nil, "8=%s\x019=%d\x01", fixsession.BeginString, len(body))
	b = append(b, body...)
	return fmt.Appendf(b, "10=%03d\x01", checksum(b))
}

func checksum(b []byte) int {
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	return sum % 256
}

// Write writes raw bytes.
func (c *Client) Write(t testing.TB, b []byte) {
	t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// Garbled returns a message like Message's with a wrong CheckSum; it takes no sequence
// number (the acceptor drops it unread).
func (c *Client) Garbled(fields ...string) []byte {
	m := c.Message(fields...)
	c.seq--
	return withCheckSum(m, +1)
}

// WriteRaw writes raw bytes and returns the error, for input the service may close the
// connection on before reading it all.
func (c *Client) WriteRaw(b []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// Logon logs on with username and password and waits for the acceptor's Logon.
func (c *Client) Logon(t testing.TB, username, password string) {
	t.Helper()
	c.Write(t, c.Message("35=A", "98=0", "108=30", "141=Y", "1137=9", "553="+username, "554="+password))
	c.Expect(t, "A", 10*time.Second)
}

// Read returns the next message, or an error once the connection ends or after timeout.
func (c *Client) Read(timeout time.Duration) ([]byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	msg, err := c.fr.Next()
	return bytes.Clone(msg), err
}

// Expect reads until a message of MsgType typ, skipping Heartbeats and TestRequests,
// and returns it.
func (c *Client) Expect(t testing.TB, typ string, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg, err := c.Read(time.Until(deadline))
		if err != nil {
			t.Fatalf("%s: waiting for MsgType %s: %v", c.sender, typ, err)
		}
		got := Field(msg, 35)
		if got == typ {
			return msg
		}
		if got != "0" && got != "1" {
			t.Fatalf("%s: got %s, waiting for MsgType %s", c.sender, printable(msg), typ)
		}
	}
}

// Ping sends a TestRequest and waits for the Heartbeat that answers it.
func (c *Client) Ping(t testing.TB) {
	t.Helper()
	id := fmt.Sprintf("ping-%d", c.seq+1)
	c.Write(t, c.Message("35=1", "112="+id))
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := c.Expect(t, "0", time.Until(deadline))
		if Field(msg, 112) == id {
			return
		}
	}
}

// WaitClosed reads until the acceptor closes the connection and returns the messages
// read before; it fails if the connection stays open for timeout.
func (c *Client) WaitClosed(t testing.TB, timeout time.Duration) [][]byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got [][]byte
	for {
		msg, err := c.Read(time.Until(deadline))
		if err == nil {
			got = append(got, msg)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: connection still open after %v (read %d messages)", c.sender, timeout, len(got))
		}
		return got // EOF, reset, or a malformed tail: closed
	}
}

// Field returns the value of the first field tag of msg, empty if none.
func Field(msg []byte, tag int) string {
	key := fmt.Appendf([]byte{1}, "%d=", tag)
	i := bytes.Index(msg, key)
	if i < 0 {
		return ""
	}
	v := msg[i+len(key):]
	if end := bytes.IndexByte(v, 1); end >= 0 {
		v = v[:end]
	}
	return string(v)
}

func printable(b []byte) string { return string(bytes.ReplaceAll(b, []byte{1}, []byte{'|'})) }

// Outcome is what the acceptor does with a bad input.
type Outcome int

const (
	// Closed: the guard refuses the message, counts it in Malformed, logs
	// "fix message refused" and closes the connection.
	Closed Outcome = iota
	// Dropped: the guard drops a garbled message (CheckSum), counts it in Garbled, logs
	// "fix message dropped"; the session goes on.
	Dropped
	// Rejected: quickfix answers with a session-level Reject (3), counted in
	// SessionRejects and logged as "fix message rejected"; the session goes on.
	Rejected
	// LoggedOut: quickfix answers with a Logout and closes; for a refused Logon it is
	// counted in LogonsRefused and logged as "fix logon refused".
	LoggedOut
)

func (o Outcome) String() string {
	return [...]string{"closed", "dropped", "rejected", "logged out"}[o]
}

// Case is one bad input.
type Case struct {
	Name string
	// LogOn: the client logs on before sending the input.
	LogOn bool
	// Input returns the bytes to send; c frames messages with its sequence numbers.
	Input func(c *Client, tg Target) []byte
	// CloseAfter: the client ends its side of the connection after the input.
	CloseAfter bool
	Want       Outcome
	// Log is a part of the log line recording the rejection, besides the client's address
	// (for Closed and Dropped).
	Log string
}

// Cases is the table of malformed input every acceptor must survive.
func Cases() []Case {
	return []Case{
		{Name: "XmlDataLen overruns the message, logged on", LogOn: true, Want: Closed, Log: "tag 212: length 5000 overruns the body",
			Input: func(c *Client, _ Target) []byte { return c.Message("35=1", "112=x", "212=5000", "213=<a/>") }},
		{Name: "XmlDataLen overruns the message, before Logon", Want: Closed, Log: "tag 212",
			Input: func(c *Client, tg Target) []byte {
				return c.Message("35=A", "98=0", "108=30", "1137=9", "553="+tg.Username, "554="+tg.Password, "212=99", "213=x")
			}},
		{Name: "RawDataLength overruns the message", LogOn: true, Want: Closed, Log: "tag 95",
			Input: func(c *Client, _ Target) []byte { return c.Message("35=1", "112=x", "95=12", "96=abc") }},
		{Name: "BodyLength too short", LogOn: true, Want: Closed, Log: "BodyLength",
			Input: func(c *Client, _ Target) []byte { return withBodyLength(c.Message("35=1", "112=x"), -5) }},
		{Name: "BodyLength too long", LogOn: true, Want: Closed, CloseAfter: true, Log: "connection ended inside a message",
			Input: func(c *Client, _ Target) []byte { return withBodyLength(c.Message("35=1", "112=x"), +40) }},
		{Name: "BodyLength of 10 MB", LogOn: true, Want: Closed, Log: "BodyLength 10485760",
			Input: func(*Client, Target) []byte { return []byte("8=FIXT.1.1\x019=10485760\x0135=1\x01") }},
		{Name: "BodyLength not a number", Want: Closed, Log: "BodyLength is not a decimal count",
			Input: func(*Client, Target) []byte { return []byte("8=FIXT.1.1\x019=x1\x0135=A\x0110=000\x01") }},
		{Name: "CheckSum wrong", LogOn: true, Want: Dropped, Log: "tag 10: CheckSum",
			Input: func(c *Client, _ Target) []byte {
				m := c.Message("35=1", "112=garbled")
				c.seq-- // garbled messages are ignored: the next one takes its sequence number
				return withCheckSum(m, +1)
			}},
		{Name: "not FIX", Want: Closed, Log: "does not start with BeginString",
			Input: func(*Client, Target) []byte { return []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n") }},
		{Name: "binary garbage", LogOn: true, Want: Closed, Log: "does not start with BeginString",
			Input: func(*Client, Target) []byte { return []byte{0x00, 0xff, 0x13, 0x37, 0x80, 0x01, 0x02} }},
		{Name: "truncated message", LogOn: true, Want: Closed, CloseAfter: true, Log: "connection ended inside a message",
			Input: func(c *Client, _ Target) []byte { m := c.Message("35=1", "112=x"); return m[:len(m)/2] }},
		{Name: "message before Logon", Want: Closed, Log: `got MsgType \"1\"`,
			Input: func(c *Client, _ Target) []byte { return c.Message("35=1", "112=x") }},
		{Name: "Logon without SenderCompID", Want: Closed, Log: "without SenderCompID (49)",
			Input: func(c *Client, tg Target) []byte {
				return Frame("35=A", "56="+tg.CompID, "34=1", "52=20260101-00:00:00", "98=0", "108=30", "1137=9")
			}},
		{Name: "empty MsgSeqNum", LogOn: true, Want: Closed, Log: "tag 34: empty value",
			Input: func(c *Client, tg Target) []byte {
				return Frame("35=1", "49="+c.sender, "56="+tg.CompID, "34=", "52=20260101-00:00:00", "112=x")
			}},
		{Name: "empty integer in the body", LogOn: true, Want: Closed, Log: "tag 911: empty value",
			Input: func(c *Client, _ Target) []byte { return c.Message("35=1", "112=x", "911=") }},
		{Name: "MsgType not the first body field", LogOn: true, Want: Closed, Log: "MsgType (35) is not the first",
			Input: func(c *Client, tg Target) []byte {
				return Frame("49="+c.sender, "35=1", "56="+tg.CompID, "34=2", "52=20260101-00:00:00", "112=x")
			}},
		{Name: "tag not a number", LogOn: true, Want: Closed, Log: "decimal tag",
			Input: func(c *Client, _ Target) []byte { return c.Message("35=1", "112=x", "abc=1") }},
		{Name: "SendingTime missing", LogOn: true, Want: Rejected, Log: "ref_tag=52",
			Input: func(c *Client, tg Target) []byte {
				c.seq++
				return Frame("35=1", "49="+c.sender, "56="+tg.CompID, fmt.Sprintf("34=%d", c.seq), "112=x")
			}},
		{Name: "wrong password", Want: LoggedOut, Log: "unknown username or password",
			Input: func(c *Client, tg Target) []byte {
				return c.Message("35=A", "98=0", "108=30", "1137=9", "553="+tg.Username, "554=wrong"+tg.Password)
			}},
		{Name: "Username twice (issue 18)", Want: LoggedOut, Log: "Logon (A) repeats Username (553)",
			Input: func(c *Client, tg Target) []byte {
				return c.Message("35=A", "98=0", "108=30", "553="+tg.Username, "553=fx", "554="+tg.Password, "1137=9")
			}},
		{Name: "Password twice", Want: LoggedOut, Log: "Logon (A) repeats Password (554)",
			Input: func(c *Client, tg Target) []byte {
				return c.Message("35=A", "98=0", "108=30", "58=x", "553="+tg.Username, "554=x", "554="+tg.Password)
			}},
		{Name: "Logon over the size limit", Want: Closed, Log: "over the limit of 4096",
			Input: func(c *Client, tg Target) []byte {
				return c.Message("35=A", "98=0", "108=30", "553="+tg.Username, "554="+tg.Password, "58="+strings.Repeat("x", 5000))
			}},
		{Name: "wrong TargetCompID", Want: LoggedOut, Log: "unknown TargetCompID",
			Input: func(c *Client, tg Target) []byte {
				return Frame("35=A", "49="+c.sender, "56=NOT"+tg.CompID, "34=1", "52="+time.Now().UTC().Format("20060102-15:04:05.000"),
					"98=0", "108=30", "1137=9", "553="+tg.Username, "554="+tg.Password)
			}},
	}
}

// withBodyLength returns msg with its BodyLength changed by delta and its CheckSum
// recomputed.
func withBodyLength(msg []byte, delta int) []byte {
	i := bytes.Index(msg, []byte("\x019=")) + 3
	j := i + bytes.IndexByte(msg[i:], 1)
	var n int
	fmt.Sscanf(string(msg[i:j]), "%d", &n)
	out := fmt.Appendf(bytes.Clone(msg[:i]), "%d", n+delta)
	out = append(out, msg[j:len(msg)-7]...)
	return fmt.Appendf(out, "10=%03d\x01", checksum(out))
}

// withCheckSum returns msg with its CheckSum off by delta.
func withCheckSum(msg []byte, delta int) []byte {
	body := msg[:len(msg)-7]
	return fmt.Appendf(bytes.Clone(body), "10=%03d\x01", (checksum(body)+delta+256)%256)
}

// Run runs every case of Cases against tg, in parallel, while a well-behaved client
// stays logged on, then checks the acceptor's counters against the outcomes.
func Run(t *testing.T, tg Target) {
	before := tg.Stats()
	good := Dial(t, tg, "GOOD")
	good.Logon(t, tg.Username, tg.Password)
	good.Ping(t)

	var mu sync.Mutex
	want := map[Outcome]uint64{}
	t.Run("cases", func(t *testing.T) {
		for i, tc := range Cases() {
			t.Run(tc.Name, func(t *testing.T) {
				t.Parallel()
				runCase(t, tg, tc, fmt.Sprintf("BAD%d", i))
				mu.Lock()
				want[tc.Want]++
				mu.Unlock()
				pingMu.Lock() // one ping of the good client at a time
				defer pingMu.Unlock()
				good.Ping(t)
			})
		}
	})
	if t.Failed() {
		return
	}
	good.Ping(t)
	got := tg.Stats()
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"Malformed", got.Malformed - before.Malformed, want[Closed]},
		{"Garbled", got.Garbled - before.Garbled, want[Dropped]},
		{"SessionRejects", got.SessionRejects - before.SessionRejects, want[Rejected]},
		{"LogonsRefused", got.LogonsRefused - before.LogonsRefused, want[LoggedOut]},
	} {
		if c.got != c.want {
			t.Errorf("AcceptorStats.%s went up by %d, want %d", c.name, c.got, c.want)
		}
	}
	if n := got.Connections - before.Connections; n < uint64(len(Cases())+1) {
		t.Errorf("AcceptorStats.Connections went up by %d, want at least %d", n, len(Cases())+1)
	}
}

// pingMu serializes the good client's pings.
var pingMu sync.Mutex

func runCase(t *testing.T, tg Target, tc Case, sender string) {
	c := Dial(t, tg, sender)
	if tc.LogOn {
		c.Logon(t, tg.Username, tg.Password)
	}
	c.Write(t, tc.Input(c, tg))
	if tc.CloseAfter {
		if tcp, ok := c.conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
	}
	switch tc.Want {
	case Closed:
		got := c.WaitClosed(t, 15*time.Second)
		for _, m := range got {
			if typ := Field(m, 35); typ != "0" && typ != "1" && typ != "5" {
				t.Errorf("before closing, the acceptor sent %s", printable(m))
			}
		}
		waitLog(t, tg, "fix message refused", "remote="+c.LocalAddr(), tc.Log)
	case Dropped:
		waitLog(t, tg, "fix message dropped", "remote="+c.LocalAddr(), tc.Log)
		c.Ping(t) // the session goes on
	case Rejected:
		rej := c.Expect(t, "3", 10*time.Second)
		waitLog(t, tg, "fix message rejected", sender, tc.Log)
		if Field(rej, 45) == "" {
			t.Errorf("Reject without RefSeqNum (45): %s", printable(rej))
		}
		c.Ping(t)
	case LoggedOut:
		out := c.Expect(t, "5", 10*time.Second)
		if !strings.Contains(Field(out, 58), tc.Log) {
			t.Errorf("Logout Text %q, want %q", Field(out, 58), tc.Log)
		}
		c.WaitClosed(t, 15*time.Second)
		waitLog(t, tg, "fix logon refused", sender, tc.Log)
	}
}

// waitLog waits until one line of the acceptor's log holds every part.
func waitLog(t *testing.T, tg Target, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(tg.Logs(), "\n") {
			if containsAll(line, parts) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", parts, tg.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
