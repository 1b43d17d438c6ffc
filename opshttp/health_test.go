package opshttp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
)

// TestHealthzStaleAndRecovered: /healthz is 200 while the books are good, 503 naming the
// book when a loss leaves it stale (retransmission and snapshots refused), and 200 again
// once a snapshot rebuilds it.
func TestHealthzStaleAndRecovered(t *testing.T) {
	syms := []string{"SBER", "GAZP"}
	g := newGen(t)
	rec := &fakeRecovery{g: g}
	rec.refuse.Store(true)
	d, url := newDetached(t, syms, rec, Config{NoDataAfter: time.Minute})
	d.send(g.levels(syms, 20)...)
	if code, body := get(t, url+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthy feed: /healthz %d %q", code, body)
	}

	// SBER's channel loses one datagram: the hole is refused recovery.
	var lost []datagram
	for _, x := range g.levels([]string{"SBER"}, 5) {
		lost = append(lost, x)
	}
	d.send(lost[1:]...)
	var h Health
	waitFor(t, "/healthz to turn 503", func() bool {
		code, body := get(t, url+"/healthz")
		if code != 503 {
			return false
		}
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("503 body %q: %v", body, err)
		}
		return true
	})
	ch := mcast.ChannelName(channelOf("SBER"))
	if h.Status != "unhealthy" || len(h.Stale) != 1 || h.Stale[0] != "SBER" || !strings.Contains(h.Reason, "1 stale book(s) on "+ch) {
		t.Errorf("health %+v", h)
	}
	_, body := get(t, url+"/api/books/SBER")
	if b, err := book.ReadDump(strings.NewReader(body)); err != nil || !b[0].Stale {
		t.Errorf("/api/books/SBER while unhealthy: %v %s", err, body)
	}

	// Recovery comes back: the tracker asks for snapshots again and the book is rebuilt,
	// then data flows on.
	rec.refuse.Store(false)
	waitFor(t, "/healthz to turn 200", func() bool {
		code, _ := get(t, url+"/healthz")
		return code == 200
	})
	d.send(g.entry("SBER", md.New, md.Bid, 9000, 7), g.entry("GAZP", md.New, md.Offer, 20000, 3))
	_, body = get(t, url+"/api/books")
	got, err := book.ReadDump(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if diff := book.DiffDumps(got, g.dump("GAZP", "SBER")); diff != "" {
		t.Errorf("books after recovery:\n%s", diff)
	}
	if rec.snaps.Load() == 0 {
		t.Error("no snapshot was served")
	}
}

// TestHealthzNoData: a handler that hears nothing for NoDataAfter is unhealthy.
func TestHealthzNoData(t *testing.T) {
	_, url := newDetached(t, []string{"SBER"}, nil, Config{NoDataAfter: 100 * time.Millisecond})
	time.Sleep(150 * time.Millisecond)
	code, body := get(t, url+"/healthz")
	var h Health
	if err := json.Unmarshal([]byte(body), &h); code != 503 || err != nil || !strings.HasPrefix(h.Reason, "no data for ") {
		t.Errorf("/healthz %d %q", code, body)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
