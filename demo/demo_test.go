package demo_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"fastfeed/demo"
	"fastfeed/fast"
	"fastfeed/internal/netns"
)

// The demo sends multicast: its tests run in a private network namespace.
func TestMain(m *testing.M) { netns.RunTests(m) }

// TestRun runs the demo briefly: it must end with books equal to the publisher's ground
// truth, having recovered the loss it injects over its FIX session. Its HTTP view counts
// its two NATS connections meanwhile.
func TestRun(t *testing.T) {
	ts, err := fast.LoadFile("../fixtures/templates.xml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := "http://" + ln.Addr().String() + "/metrics"
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{Templates: ts, Duration: 2 * time.Second, Instruments: 6, Rate: 2000, Loss: 0.01, Seed: 3,
			Out: &out, HTTP: ln})
	}()
	var body string
	for {
		if resp, err := http.Get(metrics); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		if strings.Contains(body, `fastfeed_nats_sessions{role="demo"} 2`+"\n") &&
			strings.Contains(body, `fastfeed_nats_session_state{role="demo",session="consumer",state="connected"} 1`) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the demo ended (%v) before /metrics counted its NATS sessions:\n%s", err, body)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"books equal the publisher's ground truth", "by FIX retransmission", "datagrams=",
		"books received over NATS equal the publisher's ground truth", "fastfeed oms --nats nats://127.0.0.1:4222"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunRefuses(t *testing.T) {
	for _, o := range []demo.Options{{}, {Templates: &fast.Templates{}, Loss: 0.9}} {
		if err := demo.Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) accepted", o)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
