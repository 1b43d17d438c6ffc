package bench

import (
	"context"
	"strings"
	"testing"
)

func TestReadSender(t *testing.T) {
	for _, tc := range []struct {
		out                string
		ok, started        bool
		datagrams, entries uint64
	}{
		{out: "ready\nsent 500 660\n", ok: true, started: true, datagrams: 500, entries: 660},
		{out: "ready\n", started: true}, // died before reporting
		{out: ""},                       // died at once
		{out: "sent 500 660\n"},         // no ready
		{out: "ready\nready\nsent 1 1\n", started: true}, // ready twice
		{out: "ready\nsent x y\n", started: true},
		{out: "ready\nsent 1 1\nsent 2 2\n", started: true},
	} {
		started := 0
		var d, e uint64
		err := readSender(strings.NewReader(tc.out), func() { started++ }, &d, &e)
		if (err == nil) != tc.ok || (started == 1) != tc.started || started > 1 {
			t.Errorf("%q: err %v, started %d times", tc.out, err, started)
		}
		if tc.ok && (d != tc.datagrams || e != tc.entries) {
			t.Errorf("%q: %d datagrams, %d entries", tc.out, d, e)
		}
	}
}

func TestRunSenderRefusesBadArguments(t *testing.T) {
	good := senderJob{rate: 1000, duration: 1e8, port: 34000, instruments: 2, blast: 10}.args()
	for _, args := range [][]string{
		nil,
		{"-rate", "x"},
		append(good, "extra"),
		append(append([]string{}, good...), "-port", "0"),
		append(append([]string{}, good...), "-duration", "0s"),
		append(append([]string{}, good...), "-rate", "-1"),
	} {
		var out strings.Builder
		if err := RunSender(context.Background(), templates(t), args, &out); err == nil || out.Len() > 0 {
			t.Errorf("RunSender(%q): %v, wrote %q", args, err, out.String())
		}
	}
}

// TestSenderJobArgs: what args writes, parseSenderJob reads back.
func TestSenderJobArgs(t *testing.T) {
	for _, job := range []senderJob{
		{rate: 1000, duration: 1e8, port: 34000, instruments: 2, blast: 10},
		{rate: 0, duration: 3e9, port: 65535, instruments: 256, blast: 300000, spin: true},
	} {
		got, err := parseSenderJob(job.args())
		if err != nil || got != job {
			t.Errorf("%+v: read back %+v, %v", job, got, err)
		}
	}
}

// TestRunSender runs a short paced sender in this process, as the child would, sleeping
// and spinning between sends.
func TestRunSender(t *testing.T) {
	for i, spin := range []bool{false, true} {
		var out strings.Builder
		args := senderJob{rate: 2000, duration: 1e8, port: 34100 + uint16(i), instruments: 3, blast: 10, spin: spin}.args()
		if err := RunSender(context.Background(), templates(t), args, &out); err != nil {
			t.Fatal(err)
		}
		var d, e uint64
		if err := readSender(strings.NewReader(out.String()), func() {}, &d, &e); err != nil || d == 0 || e < d {
			t.Fatalf("spin %v: output %q: %v, %d datagrams, %d entries", spin, out.String(), err, d, e)
		}
	}
}
