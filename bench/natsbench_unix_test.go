//go:build unix

package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNATSBenchBounded: a nats bench subscriber that never completes (one that lost
// messages waits for them for ever) is cut off after the run's bound with an error
// naming it, and the other counts are still measured.
func TestNATSBenchBounded(t *testing.T) {
	cli := filepath.Join(t.TempDir(), "nats")
	script := `#!/bin/sh
# args: bench sub|pub SUBJECT --server URL --clients N ...
if [ "$2" = "sub" ]; then
	if [ "$7" = "100" ]; then echo "Disconnected due to: EOF"; exec sleep 30; fi
	echo " NATS Core NATS subscriber aggregated stats: 1,357,101 msgs/sec ~ 194 MiB/sec"
fi
exit 0
`
	if err := os.WriteFile(cli, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var rows []NATSBenchRow
	var errs []string
	for _, n := range []int{100, 10} {
		r, err := natsBench(context.Background(), cli, "nats://127.0.0.1:1", n, 150, 1000, 2*time.Second)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		rows = append(rows, r)
	}
	if len(rows) != 1 || rows[0].Subscribers != 10 || rows[0].MsgsPerSec != 1357101 {
		t.Errorf("rows %+v", rows)
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "no result in 2s") || !strings.Contains(errs[0], "Disconnected due to: EOF") {
		t.Errorf("errors %q", errs)
	}
}
