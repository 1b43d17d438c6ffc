package bench

import (
	"strings"
	"testing"
	"time"
)

func TestWriteFanout(t *testing.T) {
	var b strings.Builder
	rows := []FanoutRow{{Mode: "NATS direct", Consumers: 100, Published: 1171, Updates: 117007, P50: 830 * time.Microsecond, P99: 2484 * time.Microsecond},
		{Mode: "NATS direct", Consumers: 1000, Err: "connect: i/o timeout"}}
	if err := WriteFanout(&b, rows, []NATSBenchRow{{Subscribers: 10, Size: 150, MsgsPerSec: 1953953}}, "fastfeed bench --fanout"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| NATS direct | 100 | 1171 | 117007 | 830µs | 2.484ms | 0 |", "| NATS direct | 1000 | not measured: connect: i/o timeout",
		"| 10 | 150 B | 1953953 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
	m := aggregated.FindStringSubmatch(" NATS Core NATS subscriber aggregated stats: 1,357,101 msgs/sec ~ 194 MiB/sec")
	if m == nil || m[1] != "1,357,101" {
		t.Errorf("nats bench output not parsed: %q", m)
	}
}
