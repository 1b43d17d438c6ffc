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

// TestFanoutCapacity: a capacity step passes only with p99 within 10 ms, nothing
// conflated, dropped or missed and the feed at its rate; the capacity is the highest
// passing rate, and the nats bench target is judged on it (the rows at the feed's rate
// keep the FIX bus target and say their msgs/s are not that target's).
func TestFanoutCapacity(t *testing.T) {
	ok := FanoutRow{Mode: "NATS direct, 100 per connection", Consumers: 1000, Rate: 2000, FeedRate: 2300, Published: 2290,
		Updates: 2.29e6, Messages: 1.99e6, P50: time.Millisecond, P99: 4 * time.Millisecond, Window: 3 * time.Second, Skipped: 60}
	if why := CapacityFailure(ok); why != "" {
		t.Errorf("passing step fails: %s", why)
	}
	for _, tc := range []struct {
		mod  func(*FanoutRow)
		want string
	}{
		{func(r *FanoutRow) { r.P99 = 11 * time.Millisecond }, "p99 11ms > 10ms"},
		{func(r *FanoutRow) { r.Conflations = 3 }, "3 conflations"},
		{func(r *FanoutRow) { r.Drops = 9 }, "9 messages dropped by NATS"},
		{func(r *FanoutRow) { r.Gaps = 2 }, "2 RptSeq holes"},
		{func(r *FanoutRow) { r.Skipped = 61 }, "the feed skipped 61 datagrams (starved)"}, // over 1% of 3 s at 2000/s
		{func(r *FanoutRow) { r.FeedRate = 1500 }, "the feed reached 1500 entries/s of 2000 datagrams/s before the consumers"},
		{func(r *FanoutRow) { r.Messages = 1.79e6 }, "the consumers received 1790 msgs/s each of 2000 datagrams/s"},
		{func(r *FanoutRow) { r.Note = "unsettled after 10s: 7990 of 8000 books whole" }, "unsettled"},
		{func(r *FanoutRow) { r.Err = "connect: timeout" }, "not measured: connect: timeout"},
	} {
		r := ok
		tc.mod(&r)
		if why := CapacityFailure(r); why != tc.want {
			t.Errorf("CapacityFailure %q, want %q", why, tc.want)
		}
	}

	at1k := FanoutRow{Mode: "NATS direct, 100 per connection", Consumers: 1000, Connections: 10, Updates: 1.15e6, Messages: 997371, P99: 1600 * time.Microsecond}
	s1k, s4k := ok, ok
	s1k.Rate, s1k.Messages = 1000, 1e6
	s4k.Rate, s4k.FeedRate, s4k.Published, s4k.Messages, s4k.P99 = 4000, 4600, 4590, 3.9e6, 30*time.Millisecond
	s8k := FanoutRow{Mode: ok.Mode, Consumers: 1000, Rate: 8000, Err: notRun + "4000 datagrams/s failed"}
	rows := []FanoutRow{{Mode: "FIX bus in the handler", Consumers: 10, Updates: 11676, P99: 1767 * time.Microsecond}, at1k, s1k, ok, s4k, s8k}
	caps := Capacity(rows)
	if len(caps) != 1 || caps[0].Rate != 2000 {
		t.Fatalf("Capacity %+v", caps)
	}
	var b strings.Builder
	if err := WriteFanout(&b, rows, []NATSBenchRow{{Subscribers: 100, Size: 150, MsgsPerSec: 2052696}}, "x"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| NATS direct, 100 per connection | 1000 | 2000 | 2290 | 2290000 | 1990000 | 1ms | 4ms | 0 | 0 | 0 | 60 | - | passes |",
		"| NATS direct, 100 per connection | 1000 | 4000 | 4590 | 2290000 | 3900000 | 1ms | 30ms | 0 | 0 | 0 | 60 | - | fails: p99 30ms > 10ms |",
		"| NATS direct, 100 per connection | 1000 | 8000 | not run: 4000 datagrams/s failed | | | | | | | | | - | - |",
		"- capacity of NATS direct, 100 per connection, 1000 consumers: the feed at 2000 datagrams/s, 1990000 msgs/s delivered at p99 4ms",
		"- NATS direct, 100 per connection, 1000 consumers: p99 1.6ms (within 10 ms); updates/s 98.5x the FIX bus (met); msgs/s 0.49x nats bench (at the feed's rate: not the row of that target)",
		"- half of nats bench, on the capacity of NATS direct, 100 per connection, 1000 consumers (the feed at 2000 datagrams/s, its highest rate with p99 <= 10 ms and no conflation): 1990000 msgs/s, 0.97x nats bench (met); updates/s 196.1x the FIX bus",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
	// The main table holds the rows at the feed's rate only.
	capAt := strings.Index(b.String(), "\nCapacity:")
	if main := strings.Index(b.String(), "| NATS direct, 100 per connection | 1000 | 10 |"); main < 0 || main > capAt ||
		strings.Index(b.String(), "| NATS direct, 100 per connection | 1000 | 1000 |") < capAt {
		t.Errorf("rows misplaced:\n%s", b.String())
	}
	// A capacity at the highest rate tried says the capacity may be higher; none passing is not met.
	b.Reset()
	s8k = ok
	s8k.Rate, s8k.FeedRate, s8k.Published, s8k.Messages = 8000, 9200, 9150, 7.9e6
	if err := WriteFanout(&b, []FanoutRow{s1k, s8k}, []NATSBenchRow{{Subscribers: 100, Size: 150, MsgsPerSec: 2052696}}, "x"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "the highest rate tried: the capacity may be higher") {
		t.Errorf("no highest-rate note in\n%s", b.String())
	}
	b.Reset()
	s1k.P99 = time.Second
	if err := WriteFanout(&b, []FanoutRow{s1k}, nil, "x"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "- half of nats bench, on the capacity of NATS direct, 100 per connection, 1000 consumers: no rate passed (NOT met)") {
		t.Errorf("no failed capacity in\n%s", b.String())
	}
}
