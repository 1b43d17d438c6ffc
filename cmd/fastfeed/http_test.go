package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/internal/netns"
)

// freeAddr returns a loopback address with a port free now (the test's namespace is
// private, so nobody else takes it meanwhile).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHTTPFlag: --http is refused with a clear message when malformed (feed, pub, demo,
// gateway, ingest; ingest's --linger wants it); off by default;
// on feed and pub it serves the operator's view while they run (the handler's books
// equal the publisher's ground truth through /api/books), and demo prints its URL.
func TestHTTPFlag(t *testing.T) {
	for _, args := range [][]string{
		{"feed", "--topics", "SBER", "--http", "nonsense"},
		{"pub", "--http", "127.0.0.1:99999"},
		{"demo", "--http", "localhost"},
		{"gateway", "--nats", "nats://127.0.0.1:4222", "--http", "nonsense"},
		{"ingest", "--moex-config", "config.xml", "--market", "FOND", "--capture", "x.pcap", "--http", "127.0.0.1:99999"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "--http") || !strings.Contains(stderr.String(), "want") {
			t.Errorf("%v: exit %d, %q", args, code, stderr.String())
		}
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"ingest", "--moex-config", "config.xml", "--market", "FOND", "--capture", "x.pcap", "--linger", "5s"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "give --http too") {
		t.Errorf("ingest --linger without --http: exit %d, %q", code, stderr.String())
	}
	for _, cmd := range []string{"gateway", "ingest"} {
		stdout.Reset()
		if code := run([]string{"help", cmd}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "--http") {
			t.Errorf("help %s: exit %d, no --http:\n%s", cmd, code, stdout.String())
		}
	}

	bin := fastfeedBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	feedAddr, pubAddr := freeAddr(t), freeAddr(t)
	h := start(t, ctx, bin, "feed", "--topics", "SBER,GAZP", "--duration", "4s", "--http", feedAddr)
	h.waitFor(t, "feed handler started")
	h.waitFor(t, "url=http://"+feedAddr+"/")
	p := start(t, ctx, bin, "pub", "--instruments", "4", "--rate", "3000", "--count", "3000", "--linger", "2s", "--http", pubAddr)
	p.waitFor(t, "url=http://"+pubAddr+"/")

	var code int
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body = httpGet(t, "http://"+feedAddr+"/metrics")
		if m := regexp.MustCompile(`fastfeed_messages_total\{role="feed"\} (\d+)`).FindStringSubmatch(body); code == 200 && m != nil && m[1] != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("feed /metrics never counted a message: %d\n%s", code, body)
		}
	}
	if code, body = httpGet(t, "http://"+pubAddr+"/metrics"); code != 200 || !strings.Contains(body, `fastfeed_incrementals_total{role="pub"}`) ||
		!strings.Contains(body, `fastfeed_fix_sessions{role="pub"}`) ||
		!strings.Contains(body, `fastfeed_max_lag_us{role="pub"}`) || !strings.Contains(body, `fastfeed_retransmitted_total{role="pub"}`) {
		t.Errorf("pub /metrics: %d\n%s", code, body)
	}
	if code, body = httpGet(t, "http://"+pubAddr+"/api/channels"); code != 200 || !json.Valid([]byte(body)) || !strings.Contains(body, "SBER") {
		t.Errorf("pub /api/channels: %d %s", code, body)
	}
	// Once the data has stopped, the publisher serves its ground truth.
	var truth book.Dump
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body = httpGet(t, "http://"+pubAddr+"/api/books")
		if code == 200 {
			var err error
			if truth, err = book.ReadDump(strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pub /api/books: %d %s", code, body)
		}
	}
	want := subset(truth, []string{"GAZP", "SBER"})
	var diff string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body = httpGet(t, "http://"+feedAddr+"/api/books")
		got, err := book.ReadDump(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if diff = book.DiffDumps(got, want); diff == "" || time.Now().After(deadline) {
			break
		}
	}
	if diff != "" {
		t.Errorf("feed /api/books differs from pub's ground truth:\n%s", diff)
	}
	if code, body = httpGet(t, "http://"+feedAddr+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("feed /healthz: %d %q", code, body)
	}
	p.wait(t, "pub")
	h.wait(t, "feed")
	if code, _ = httpGet(t, "http://"+feedAddr+"/healthz"); code != 0 {
		t.Errorf("the feed's HTTP server outlived it: %d", code)
	}

	// Off by default (and, with no publisher, SBER is never heard of: exit 1).
	h = start(t, ctx, bin, "feed", "--topics", "SBER", "--duration", "1s")
	<-h.done
	if strings.Contains(h.stderr.String(), "operator HTTP view") {
		t.Errorf("feed served HTTP without --http:\n%s", h.stderr.String())
	}

	// demo prints the page's address and serves it.
	demoAddr := freeAddr(t)
	cmd, err := netns.Command(ctx, bin, "demo", "--duration", "2s", "--instruments", "4", "--rate", "1000", "--http", demoAddr)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = filepath.Join("..", "..")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "live page: http://"+demoAddr+"/\n"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not print its URL:\n%s", out.String())
		}
	}
	if code, body = httpGet(t, "http://"+demoAddr+"/"); code != 200 || !strings.Contains(body, "fastfeed") {
		t.Errorf("demo /: %d", code)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, body = httpGet(t, "http://"+demoAddr+"/api/channels"); code == 200 && strings.Contains(body, `"state"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo /api/channels: %d %s", code, body)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
}
