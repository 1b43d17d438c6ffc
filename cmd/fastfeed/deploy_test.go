package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"fastfeed/roles"
)

// parseFlags checks that args (a subcommand and its flags) are accepted by that
// subcommand's flag parser, as the binary would parse them (files named need not exist
// here: only the command line is checked).
func parseFlags(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no subcommand", where)
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		t.Fatalf("%s: unknown subcommand %q", where, args[0])
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch args[0] {
	case "feed":
		var o roles.FeedOptions
		o.Register(fs)
	case "pub":
		var o roles.PubOptions
		o.Register(fs)
	default:
		t.Fatalf("%s: subcommand %q (%s) not checked here", where, args[0], cmd.summary)
	}
	if err := fs.Parse(args[1:]); err != nil {
		t.Errorf("%s: fastfeed %s refuses %q: %v", where, args[0], args[1:], err)
	}
	if fs.NArg() != 0 {
		t.Errorf("%s: arguments left over: %q", where, fs.Args())
	}
}

// TestDockerfile: the Dockerfile builds in one stage and runs in another: a static
// binary (CGO_ENABLED=0 go build), copied from the build stage into a final stage that
// runs as a non-root user; its default command is one the binary accepts, and its
// comments explain host networking for multicast.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	type stage struct {
		name, from string
		lines      []string
	}
	var stages []*stage
	from := regexp.MustCompile(`(?i)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$`)
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(string(data), "\\\n", " ")))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if m := from.FindStringSubmatch(l); m != nil {
			stages = append(stages, &stage{name: m[2], from: m[1]})
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %q", l)
		}
		s := stages[len(stages)-1]
		s.lines = append(s.lines, l)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a run stage", len(stages))
	}
	build, run := stages[0], stages[len(stages)-1]
	has := func(s *stage, re string) string {
		r := regexp.MustCompile(re)
		for _, l := range s.lines {
			if r.MatchString(l) {
				return l
			}
		}
		return ""
	}
	if has(build, `^RUN .*CGO_ENABLED=0 .*go build .*\./cmd/fastfeed`) == "" {
		t.Errorf("build stage %q: no RUN CGO_ENABLED=0 go build ./cmd/fastfeed", build.name)
	}
	if has(run, `^COPY --from=`+regexp.QuoteMeta(build.name)+`\s`) == "" {
		t.Errorf("run stage: the binary is not copied from the build stage %q", build.name)
	}
	if has(run, `^RUN `) != "" {
		t.Errorf("run stage runs commands: want only the binary (distroless or scratch)")
	}
	user := has(run, `^USER `)
	if u := strings.Fields(user); len(u) != 2 || strings.HasPrefix(u[1], "root") || strings.HasPrefix(u[1], "0:") || u[1] == "0" {
		t.Errorf("run stage: %q, want a non-root USER", user)
	}
	entry, cmd := has(run, `^ENTRYPOINT `), has(run, `^CMD `)
	var ep, args []string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(entry, "ENTRYPOINT ")), &ep); err != nil || len(ep) != 1 || filepath.Base(ep[0]) != "fastfeed" {
		t.Errorf("ENTRYPOINT %q: want [\"/path/fastfeed\"] (%v)", entry, err)
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(cmd, "CMD ")), &args); err != nil {
		t.Fatalf("CMD %q: want a JSON array (%v)", cmd, err)
	}
	parseFlags(t, "Dockerfile CMD", args)
	for _, want := range []string{"--network host", "IGMP"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("Dockerfile comments do not explain host networking for multicast (no %q)", want)
		}
	}
}

// TestSystemdUnit: docs/fastfeed-feed.service's ExecStart is a command line the binary
// accepts, it has the hardening options, and systemd-analyze verify finds nothing wrong
// with it (with ExecStart pointing at a real binary).
func TestSystemdUnit(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "fastfeed-feed.service")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	section := ""
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("line %q: not key=value", l)
			}
			keys[section+"."+k] = v
		}
	}
	exec0 := strings.Fields(keys["Service.ExecStart"])
	if len(exec0) < 2 || exec0[0] != "/usr/local/bin/fastfeed" {
		t.Fatalf("ExecStart %q: want /usr/local/bin/fastfeed SUBCOMMAND ...", keys["Service.ExecStart"])
	}
	parseFlags(t, "ExecStart", exec0[1:])
	for k, want := range map[string]string{
		"Service.NoNewPrivileges": "yes", "Service.ProtectSystem": "strict", "Service.ProtectHome": "yes",
		"Service.PrivateTmp": "yes", "Service.DynamicUser": "yes", "Service.CapabilityBoundingSet": "",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK", "Service.KillSignal": "SIGTERM",
		"Service.MemoryDenyWriteExecute": "yes", "Service.SystemCallFilter": "@system-service", "Install.WantedBy": "multi-user.target",
	} {
		if got, ok := keys[k]; !ok || got != want {
			t.Errorf("%s=%q (set %v), want %q", k, got, ok, want)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed: run `make deps` (scripts/deps.sh)")
	}
	bin := fastfeedBinary(t)
	unit := filepath.Join(t.TempDir(), "fastfeed-feed.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/fastfeed", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
