package demo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"fastfeed/demo"
	"fastfeed/fast"
	"fastfeed/internal/netns"
)

// The demo sends multicast: its tests run in a private network namespace.
func TestMain(m *testing.M) { netns.RunTests(m) }

// TestRun runs the demo briefly: it must end with books equal to the publisher's ground
// truth, having recovered the loss it injects over its FIX session.
func TestRun(t *testing.T) {
	ts, err := fast.LoadFile("../fixtures/templates.xml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := demo.Run(ctx, demo.Options{Templates: ts, Duration: 2 * time.Second, Instruments: 6, Rate: 2000, Loss: 0.01, Seed: 3, Out: &out}); err != nil {
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
