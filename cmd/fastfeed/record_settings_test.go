package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
)

// TestRecordThenReplayNoFlags: two recorders, started before the publisher, capture a
// feed on a port, definitions group and group mapping that are not the defaults: one
// with --all, one with --topics. Each capture replays with no network flag repeated (record
// kept them in the pcapng) into the publisher's books; the --all capture has every
// channel from its first datagram (no gap: the recorder joined each channel from its
// definition before the channel started); a flag given to replay wins over the capture's.
func TestRecordThenReplayNoFlags(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	netFlags := []string{"--port", "30177", "--definitions-group", "239.77.0.0", "--group-base", "239.77.1.1", "--group-size", "3"}
	all, topics, pubDump := filepath.Join(dir, "all.pcapng"), filepath.Join(dir, "topics.pcapng"), filepath.Join(dir, "pub.jsonl")
	recAll := start(t, ctx, bin, append([]string{"record", "--all", "--out", all}, netFlags[:4]...)...)
	recTopics := start(t, ctx, bin, append([]string{"record", "--topics", "SBER,GAZP", "--out", topics}, netFlags...)...)
	recAll.waitFor(t, "msg=recording")
	recTopics.waitFor(t, "msg=recording")
	args := append([]string{"pub", "--instruments", "4", "--rate", "400", "--count", "300", "--dump-books", pubDump}, netFlags...)
	if code, _, log := fastfeed(t, ctx, bin, args...); code != 0 {
		t.Fatalf("pub: exit %d\n%s", code, log)
	}
	time.Sleep(200 * time.Millisecond)
	recAll.interrupt(t, "record --all")
	recTopics.interrupt(t, "record --topics")
	truth := readDump(t, pubDump)
	if len(truth) != 4 {
		t.Fatalf("publisher dumped %d books", len(truth))
	}

	for _, tt := range []struct {
		name, capture string
		extra         []string
		want          book.Dump
		fromCapture   []string // settings the log must show taken from the capture
	}{
		{"all", all, nil, truth, []string{"port=30177", "definitions-group=239.77.0.0"}},
		{"topics", topics, nil, subset(truth, []string{"GAZP", "SBER"}), []string{"topics=SBER,GAZP", "group-base=239.77.1.1", "group-size=3", "port=30177"}},
		{"flag wins", topics, []string{"--topics", "SBER"}, subset(truth, []string{"SBER"}), []string{"group-base=239.77.1.1", "port=30177"}},
		// LKOH's channel is on 239.77.1.2, which a handler following SBER does not join.
		{"not joined", all, []string{"--topics", "SBER", "--group-base", "239.77.1.1", "--group-size", "3"}, subset(truth, []string{"SBER"}), []string{"port=30177"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dump, stats := filepath.Join(dir, tt.name+".jsonl"), filepath.Join(dir, tt.name+".json")
			args := append([]string{"replay", tt.capture, "--max", "--dump-books", dump, "--stats-out", stats}, tt.extra...)
			code, _, log := fastfeed(t, ctx, bin, args...)
			if code != 0 {
				t.Fatalf("replay: exit %d\n%s", code, log)
			}
			for _, s := range tt.fromCapture {
				if !strings.Contains(log, "settings from the capture") || !strings.Contains(log, s) {
					t.Errorf("log does not show %s taken from the capture:\n%s", s, log)
				}
			}
			if d := book.DiffDumps(readDump(t, dump), tt.want); d != "" {
				t.Fatalf("books differ from the publisher's:\n%s\n%s", d, log)
			}
			st := readJSON(t, stats)
			if st["gaps"] != 0.0 || st["capture_holes"] != 0.0 || st["stale_books"] != 0.0 || st["decode_errors"] != 0.0 {
				t.Errorf("stats %v: want no gap, no hole in the capture, no stale book\n%s", st, log)
			}
			if tt.name == "not joined" {
				if st["not_joined"] == 0.0 || !strings.Contains(log, "not_joined counts the capture's datagrams for groups this handler did not join") {
					t.Errorf("--topics SBER of an --all capture: not_joined %v, want > 0 and explained\n%s", st["not_joined"], log)
				}
			}
		})
	}
}
