package bench

import (
	"strings"
	"testing"
	"time"
)

func TestWriteFanout(t *testing.T) {
	var b strings.Builder
	rows := []FanoutRow{{Mode: "NATS direct", Consumers: 100, Connections: 100, Load: 6.2, Published: 1171, Updates: 117007, P50: 830 * time.Microsecond, P99: 2484 * time.Microsecond},
		{Mode: "NATS direct", Consumers: 1000, Err: "connect: i/o timeout"}}
	if err := WriteFanout(&b, rows, []NATSBenchRow{{Subscribers: 10, Size: 150, MsgsPerSec: 1953953}}, "fastfeed bench --fanout"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| NATS direct | 100 | 100 | 1171 | 117007 | - | 830µs | 2.484ms | 0 | 0 | 6.2 |  |", "| NATS direct | 1000 | - | not measured: connect: i/o timeout",
		"| 10 | 150 B | 1953953 | - |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
	m := aggregated.FindStringSubmatch(" NATS Core NATS subscriber aggregated stats: 1,357,101 msgs/sec ~ 194 MiB/sec")
	if m == nil || m[1] != "1,357,101" {
		t.Errorf("nats bench output not parsed: %q", m)
	}
}

// TestFanoutRowNothingDelivered: a window in which the consumers applied nothing is an
// error naming what they were doing, not a row of zeros; a latency beyond the histogram's
// range is counted at its top and noted.
func TestFanoutRowNothingDelivered(t *testing.T) {
	empty := sample{lat: NewHistogram(), consumers: 1000, books: 8000, whole: 12, updates: 500, drops: 10}
	r := sample{lat: NewHistogram(), consumers: 1000, books: 8000, whole: 12, updates: 500, drops: 4010, gaps: 77}.
		row(FanoutRow{Mode: "NATS direct", Consumers: 1000}, empty, 415726, 3)
	if want := "delivered nothing in 3.0 s (feed 415726 entries/s; 12 of 8000 books whole; 4000 messages dropped by NATS, 77 RptSeq holes)"; r.Err != want {
		t.Errorf("Err %q, want %q", r.Err, want)
	}
	var b strings.Builder
	if err := WriteFanout(&b, []FanoutRow{r}, nil, "x"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "| 0s |") || !strings.Contains(b.String(), "not measured: delivered nothing") {
		t.Errorf("table:\n%s", b.String())
	}

	lat := NewHistogram()
	for range 100 {
		_ = lat.RecordValue(lat.HighestTrackableValue())
	}
	r = sample{lat: lat, updates: 900}.row(FanoutRow{}, sample{lat: NewHistogram()}, 1000, 3)
	if r.Err != "" || r.Updates != 300 || r.P99 < MaxLatency || !strings.Contains(r.Note, "latencies beyond 10s counted as 10s") {
		t.Errorf("row %+v", r)
	}
}

// TestFanoutTargets: the targets are stated as ratios of the run's own rows, and a row
// over 10 ms at p99 meets none.
func TestFanoutTargets(t *testing.T) {
	rows := []FanoutRow{
		{Mode: "FIX bus in the handler", Consumers: 10, Updates: 12000, P99: 3 * time.Millisecond},
		{Mode: "FIX bus in the handler", Consumers: 50, Updates: 150000, P99: 900 * time.Millisecond},
		{Mode: "NATS direct, 100 per connection", Consumers: 1000, Updates: 1.2e6, Messages: 1e6, P99: 8 * time.Millisecond},
		{Mode: "NATS direct, 100 per connection", Consumers: 100, Updates: 1.2e6, Messages: 1e6, P99: 11 * time.Millisecond},
	}
	var b strings.Builder
	if err := WriteFanout(&b, rows, []NATSBenchRow{{Subscribers: 100, Size: 150, MsgsPerSec: 1.25e6}, {Subscribers: 10, Size: 150, MsgsPerSec: 1e6}}, "x"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- reference: FIX bus in the handler, 10 clients, 12000 updates/s at p99 3ms",
		"- reference: nats bench, 100 subscribers, 1250000 msgs/s",
		"- NATS direct, 100 per connection, 1000 consumers: p99 8ms (within 10 ms); updates/s 100.0x the FIX bus (met); msgs/s 0.80x nats bench (met)",
		"- NATS direct, 100 per connection, 100 consumers: p99 11ms (over 10 ms); updates/s 100.0x the FIX bus (NOT met); msgs/s 0.80x nats bench (NOT met)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}
