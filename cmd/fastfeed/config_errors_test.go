package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigErrors runs the binary with configuration files and flags that are wrong in
// one place each. It must exit non-zero, before doing any work, with a message that
// names the file or flag and the field or position at fault, and never panic.
func TestConfigErrors(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	templates := file("templates.xml", `<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1">
  <template name="T" id="1"><uInt32 name="A" id="1"><copy/></uInt32></template>
</templates>`)
	tests := []struct {
		name string
		args []string
		want []string // parts of stderr
	}{
		{"pub: malformed JSON", []string{"pub", "--config", file("syntax.json", "{\n  \"rate\": 100,\n  \"port\": ,\n}")},
			[]string{"syntax.json", "line 3"}},
		{"pub: unknown field", []string{"pub", "--config", file("unknown.json", `{"rate": 100, "instrumentz": []}`)},
			[]string{"unknown.json", "instrumentz"}},
		{"pub: bad group address", []string{"pub", "--config", file("group.json", `{"groups": {"base": "239.0.0.300"}}`)},
			[]string{"group.json", "base", "239.0.0.300"}},
		{"pub: unicast group base", []string{"pub", "--config", file("unicast.json", `{"groups": {"base": "10.0.0.1"}}`)},
			[]string{"unicast.json", "10.0.0.1"}},
		{"pub: duplicate symbol", []string{"pub", "--config", file("dup.json", `{"instruments": [
  {"symbol": "SBER", "tick": "0.01", "price_exp": -2, "start_price": "285.40"},
  {"symbol": "SBER", "tick": "0.01", "price_exp": -2, "start_price": "285.40"}]}`)},
			[]string{"dup.json", "SBER", "duplicate"}},
		{"pub: negative rate", []string{"pub", "--config", file("rate.json", `{"rate": -5}`)},
			[]string{"rate.json", "rate", "-5"}},
		{"pub: negative port", []string{"pub", "--config", file("port.json", `{"port": -1}`)},
			[]string{"port.json", "port"}},
		{"pub: negative retention", []string{"pub", "--config", file("retention.json", `{"retention": {"datagrams": -1}}`)},
			[]string{"retention.json", "datagrams", "-1"}},
		{"pub: negative payload limit", []string{"pub", "--config", file("payload.json", `{"payload_limit": -1400}`)},
			[]string{"payload.json", "payload_limit", "-1400"}},
		{"pub: config missing", []string{"pub", "--config", filepath.Join(dir, "nowhere.json")},
			[]string{"nowhere.json"}},
		{"pub: negative --rate", []string{"pub", "--rate", "-1"}, []string{"rate", "-1"}},
		{"pub: malformed templates", []string{"pub", "--templates", file("bad.xml", "<templates><template name=\"T\" id=\"1\">")},
			[]string{"bad.xml", "line"}},
		{"pub: templates without the feed's messages", []string{"pub", "--templates", templates},
			[]string{"--templates", "templates lack MDIncRefresh"}},
		{"feed: --inject-loss 2", []string{"feed", "--topics", "SBER", "--inject-loss", "2"}, []string{"--inject-loss 2", "probability"}},
		{"feed: --inject-dup -0.5", []string{"feed", "--topics", "SBER", "--inject-dup", "-0.5"}, []string{"--inject", "dup", "-0.5"}},
		{"feed: empty topic", []string{"feed", "--topics", "SBER,,GAZP"}, []string{"--topics"}},
		{"feed: no topics", []string{"feed"}, []string{"--topics", "--all"}},
		{"feed: --iface neither a name nor an address", []string{"feed", "--topics", "SBER", "--iface", "nosuch0"}, []string{"--iface", "nosuch0"}},
		{"feed: --iface not here", []string{"feed", "--topics", "SBER", "--iface", "10.9.9.9", "--duration", "1s"}, []string{"--iface 10.9.9.9", "no interface"}},
		{"pub: --fix-min-rate 0", []string{"pub", "--fix-min-rate", "0"}, []string{"--fix-min-rate 0"}},
		{"pub: --fix-rate-window 1ms", []string{"pub", "--fix-rate-window", "1ms"}, []string{"--fix-rate-window 1ms"}},
		{"pub: --fix-max-pending -1", []string{"pub", "--fix-max-pending", "-1"}, []string{"--fix-max-pending -1"}},
		{"pub: --fix-in-flight 0", []string{"pub", "--fix-in-flight", "0"}, []string{"--fix-in-flight 0"}},
		{"pub: --iface not here", []string{"pub", "--iface", "10.9.9.9", "--count", "1"}, []string{"--iface 10.9.9.9", "no interface"}},
		{"feed: --source not an address", []string{"feed", "--topics", "SBER", "--source", "x"}, []string{"--source", "x"}},
		{"feed: --group-base not multicast", []string{"feed", "--topics", "SBER", "--group-base", "10.0.0.1"}, []string{"--group-base", "10.0.0.1"}},
		{"feed: malformed templates", []string{"feed", "--topics", "SBER", "--templates", file("bad2.xml", "<templates><template")},
			[]string{"bad2.xml"}},
		{"feed: bus config malformed", []string{"feed", "--topics", "SBER", "--serve-fix", "127.0.0.1:0",
			"--bus-config", file("bus1.json", "{\"users\": [}")}, []string{"bus1.json", "line 1"}},
		{"feed: bus config unknown field", []string{"feed", "--topics", "SBER", "--serve-fix", "127.0.0.1:0",
			"--bus-config", file("bus2.json", `{"userz": []}`)}, []string{"bus2.json", "userz"}},
		{"feed: bus config duplicate user", []string{"feed", "--topics", "SBER", "--serve-fix", "127.0.0.1:0",
			"--bus-config", file("bus3.json", `{"users": [{"username": "a", "password": "x"}, {"username": "a", "password": "y"}]}`)},
			[]string{"bus3.json", `"a"`, "twice"}},
		{"pub: --fix-max-connections 0", []string{"pub", "--fix-max-connections", "0"}, []string{"--fix-max-connections 0", "at least 1"}},
		{"pub: --fix-max-logon-size 10", []string{"pub", "--fix-max-logon-size", "10"}, []string{"--fix-max-logon-size", "MaxLogonSize 10"}},
		{"pub: --fix-logon-timeout -1s", []string{"pub", "--fix-logon-timeout", "-1s"}, []string{"--fix-logon-timeout -1s", "positive"}},
		{"feed: FIX limit without --serve-fix", []string{"feed", "--topics", "SBER", "--fix-max-connections-per-source", "3"},
			[]string{"--fix-max-connections-per-source", "--serve-fix"}},
		{"feed: bus config negative FIX cap", []string{"feed", "--topics", "SBER", "--serve-fix", "127.0.0.1:0",
			"--bus-config", file("bus5.json", `{"fix_max_connections": -3, "users": [{"username": "a", "password": "x"}]}`)},
			[]string{"bus5.json", "fix_max_connections", "-3"}},
		{"feed: bus config negative queue", []string{"feed", "--topics", "SBER", "--serve-fix", "127.0.0.1:0",
			"--bus-config", file("bus4.json", `{"queue_size": -1, "users": [{"username": "a", "password": "x"}]}`)},
			[]string{"bus4.json", "queue_size", "-1"}},
		{"feed: --serve-fix not an address", []string{"feed", "--topics", "SBER", "--serve-fix", "nowhere"}, []string{"nowhere"}},
		{"oms: --connect not an address", []string{"oms", "--connect", "nowhere", "--duration", "1s"}, []string{"nowhere"}},
		{"unknown subcommand", []string{"feeed"}, []string{"feeed"}},
		{"unknown flag", []string{"feed", "--topix", "SBER"}, []string{"topix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code, _, stderr := fastfeed(t, ctx, bin, tt.args...)
			if code == 0 {
				t.Fatalf("fastfeed %s: exit 0, want an error\n%s", strings.Join(tt.args, " "), stderr)
			}
			if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
				t.Fatalf("fastfeed %s panicked:\n%s", strings.Join(tt.args, " "), stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("fastfeed %s: stderr does not name %q:\n%s", strings.Join(tt.args, " "), w, stderr)
				}
			}
			t.Logf("exit %d: %s", code, lastLine(stderr))
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
