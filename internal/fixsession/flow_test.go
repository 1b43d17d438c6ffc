package fixsession

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// appMsg is an application message of about size bytes with sequence number seq.
func appMsg(seq, size int) []byte {
	return fixMsg("35=X", "49=FFPUB", "56=CLIENT", fmt.Sprintf("34=%d", seq), "52=20260101-00:00:00.000",
		"58="+strings.Repeat("x", max(1, size-70)))
}

// TestRelayQueue checks the output queue of a client connection: pieces of at most
// writePiece bytes, InFlight and Written as the client reads, the bound on what is
// queued, WaitRoom's wake-up and timeout, and the close that drops what is not begun,
// finishes the message being written and writes only a Logout after it.
func TestRelayQueue(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	q := newOutQueue(server)
	q.grace = time.Second
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		q.write()
	}()

	// Ten messages of 10,000 bytes: pieces of at most 4 KiB, counted as they are taken.
	var want []byte
	for i := range 10 {
		m := appMsg(i+1, 10000)
		want = append(want, m...)
		if !q.push(m) {
			t.Fatal("push refused")
		}
	}
	got := make([]byte, 0, len(want))
	buf := make([]byte, 64<<10)
	for len(got) < len(want) {
		n, err := client.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n > writePiece {
			t.Fatalf("a write of %d bytes, more than %d", n, writePiece)
		}
		got = append(got, buf[:n]...)
		waitFor(t, func() bool { return q.total() == uint64(len(got)) }, "Written to count what was read")
		if f := q.inFlight(); f != len(want)-len(got) {
			t.Fatalf("InFlight %d after %d of %d bytes read", f, len(got), len(want))
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the client read other bytes than were queued")
	}

	// The bound: pushes beyond maxQueued wait for the client.
	pushed := make(chan int, 1)
	go func() {
		n := 0
		for q.inFlight() < maxQueued || n == 0 {
			q.push(appMsg(100+n, 8000))
			n++
		}
		q.push(appMsg(100+n, 8000)) // waits
		pushed <- n + 1
	}()
	waitFor(t, func() bool { return q.inFlight() >= maxQueued }, "the queue to fill")
	select {
	case <-pushed:
		t.Fatalf("a push went through with %d bytes queued, the bound is %d", q.inFlight(), maxQueued)
	case <-time.After(100 * time.Millisecond):
	}
	queued := q.inFlight()
	if queued > maxQueued+8000 {
		t.Fatalf("%d bytes queued, more than the bound %d and a message", queued, maxQueued)
	}

	readN := func(want int) {
		for read := 0; read < want; {
			n, err := client.Read(buf[:writePiece])
			if err != nil {
				t.Fatal(err)
			}
			read += n
		}
	}
	readN(12000)
	wait(t, pushed, "the waiting push, once the client read")

	// WaitRoom: a timeout while the client does not read, a wake-up once it does.
	queued = q.inFlight()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := q.waitBelow(ctx, queued-10000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitBelow with nothing read: %v, want a deadline", err)
	}
	cancel()
	room := make(chan error, 1)
	go func() { room <- q.waitBelow(context.Background(), queued-10000) }()
	readN(12000)
	if err := wait(t, room, "waitBelow after a read"); err != nil {
		t.Fatal(err)
	}

	// Close: read half a piece of the message being written, then close. The
	// message begun is finished; the rest is dropped; a message other than a
	// Logout is dropped; the Logout goes out and the connection closes.
	if _, err := io.ReadFull(client, buf[:100]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.writing || q.head > 0 }, "a message to be begun")
	q.mu.Lock()
	begun, head := q.msgs[0], q.head
	q.mu.Unlock()
	q.beginClose()
	if q.push(appMsg(999, 500)) {
		t.Error("an application message was queued after beginClose")
	}
	logout := fixMsg("35=5", "49=FFPUB", "56=CLIENT", "34=1000", "52=20260101-00:00:00.000", "58=too slow")
	if !q.push(logout) {
		t.Fatal("the Logout was not queued after beginClose")
	}
	rest, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	// The rest of the message begun (from where the client had read, at or after
	// q.head), then the Logout, then the end.
	k := len(rest) - len(logout)
	if !bytes.HasSuffix(rest, logout) || k > len(begun)-head || !bytes.Equal(rest[:k], begun[len(begun)-k:]) {
		t.Fatalf("after the close the client read %d bytes ending %q; want the rest of the message begun (at most %d bytes) and the Logout",
			len(rest), rest[max(0, len(rest)-80):], len(begun)-head)
	}
	wait(t, writerDone, "the writer to end")
	if err := q.waitBelow(context.Background(), 1); !errors.Is(err, errQueueClosed) {
		t.Fatalf("waitBelow after the close: %v", err)
	}
}

// TestRelayQueueGrace checks that a closing connection whose client does not read is
// closed after the grace period.
func TestRelayQueueGrace(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	q := newOutQueue(server)
	q.grace = 100 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.write()
	}()
	q.push(appMsg(1, 10000))
	start := time.Now()
	q.beginClose()
	wait(t, done, "the writer to end after the grace period")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
	if _, err := client.Write([]byte("x")); err == nil {
		t.Fatal("the connection is still open")
	}
}

// TestReadFrames splits quickfix's output, read in pieces of any size, into whole
// messages.
func TestReadFrames(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i, size := range []int{100, 70000, 300, 5000, 150000, 90} {
		m := appMsg(i+1, size)
		stream = append(stream, m...)
		want = append(want, m)
	}
	for _, r := range []io.Reader{bytes.NewReader(stream), iotest.OneByteReader(bytes.NewReader(stream)), iotest.HalfReader(bytes.NewReader(stream))} {
		server, client := net.Pipe()
		q := newOutQueue(server)
		readFrames(r, q)
		q.mu.Lock()
		got := q.msgs
		q.mu.Unlock()
		if len(got) != len(want) {
			t.Fatalf("%d messages, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("message %d differs", i)
			}
		}
		server.Close()
		client.Close()
	}
}

func TestFrameLen(t *testing.T) {
	m := appMsg(1, 100)
	for _, tc := range []struct {
		b    []byte
		want int
	}{
		{m, len(m)},
		{append(bytes.Clone(m), "8=FIXT"...), len(m)},
		{m[:len(m)-1], 0},
		{m[:5], 0},
		{m[:12], 0},
		{[]byte("8=FIXT.1.1\x019=1"), 0},
		{[]byte("9=FIXT.1.1\x01"), -1},
		{[]byte("8=FIXT.1.1\x0135=A\x01"), -1},
		{[]byte("8=FIXT.1.1\x019=\x01"), -1},
		{[]byte("8=FIXT.1.1\x019=1x\x01"), -1},
		{[]byte("8=" + strings.Repeat("F", 40)), -1},
		{[]byte("8=FIXT.1.1\x019=1234567890123\x01"), -1},
	} {
		if got := frameLen(tc.b); got != tc.want {
			t.Errorf("frameLen(%q) = %d, want %d", tc.b, got, tc.want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestOutRegistry checks which connection's queue a session's calls reach: the oldest
// whose quickfix side goes on, not one that ended and is still writing its last output,
// nor a later duplicate.
func TestOutRegistry(t *testing.T) {
	var r outRegistry
	conns := make([]net.Conn, 0, 6)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	mk := func() *outQueue {
		a, b := net.Pipe()
		conns = append(conns, a, b)
		return newOutQueue(a)
	}
	old, live, dup := mk(), mk(), mk()
	if r.lookup("C") != nil {
		t.Fatal("a queue for an unknown sender")
	}
	r.attach("C", old)
	r.attach("C", live)
	r.attach("C", dup)
	if r.lookup("C") != old {
		t.Fatal("lookup is not the oldest connection")
	}
	old.finish() // its session ended; it still writes what it has
	if r.lookup("C") != live {
		t.Fatal("lookup is not the oldest connection still going")
	}
	r.detach("C", old)
	r.detach("C", live)
	r.detach("C", dup)
	if r.lookup("C") != nil || len(r.bySender) != 0 {
		t.Fatal("queues left after detach")
	}
}
