package roles

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fastfeed/feed"
	"fastfeed/publisher"
)

// writeConfig writes content to a config file in the test's directory.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// parseRole registers a role's flags and parses args, with "--config FILE" first when
// config is not empty (the flags' merge for every role but pub).
func parseRole(t *testing.T, register func(*flag.FlagSet), args []string, config string, merge bool) (map[string]bool, error) {
	t.Helper()
	fs := flag.NewFlagSet("role", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	register(fs)
	if config != "" {
		args = append([]string{"--config", writeConfig(t, config)}, args...)
	}
	po := parseOpts{positional: -1}
	if merge {
		po.config = "config"
	}
	c, err := parse(fs, args, po)
	if err != nil {
		return nil, err
	}
	return c.set, nil
}

// words prints vs separated by spaces.
func words(vs ...any) string { return strings.TrimSuffix(fmt.Sprintln(vs...), "\n") }

// row is one line of a role's precedence table: the flags, the config file and what
// the resolved setting must print as.
type row[O any] struct {
	name   string
	args   []string
	config string
	get    func(o *O, set map[string]bool) (any, error)
	want   string
}

func runRows[O any](t *testing.T, register func(*O) func(*flag.FlagSet), merge bool, rows []row[O]) {
	t.Helper()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			o := new(O)
			set, err := parseRole(t, register(o), r.args, r.config, merge)
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.get(o, set)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(v); got != r.want {
				t.Errorf("%v with config %s: got %s, want %s", r.args, r.config, got, r.want)
			}
		})
	}
}

// A flag given on the command line beats the config file's key of the same name, which
// beats the default: for each role, and for every shared flag (network, templates, log
// level), which all go through the same merge.
func TestFeedPrecedence(t *testing.T) {
	hc := func(get func(feed.Config) any) func(*FeedOptions, map[string]bool) (any, error) {
		return func(o *FeedOptions, set map[string]bool) (any, error) {
			cfg, err := o.HandlerConfig(set)
			return get(cfg), err
		}
	}
	port := hc(func(c feed.Config) any { return c.Port })
	topics := hc(func(c feed.Config) any { return fmt.Sprint(c.Topics, c.All) })
	mapping := hc(func(c feed.Config) any { return c.Mapping })
	gap := hc(func(c feed.Config) any { return fmt.Sprint(c.Gap.GapWait, c.Gap.Window) })
	inject := hc(func(c feed.Config) any { return words(c.Inject.Loss, string(rune(c.Inject.Line))) })
	lineB := hc(func(c feed.Config) any { return fmt.Sprint(c.BPort, c.BBase) })
	iface := hc(func(c feed.Config) any { return c.Interface })
	busy := hc(func(c feed.Config) any { return words(c.BusyPoll, c.PinCPU, c.CPU, c.SharedSockets) })
	stages := hc(func(c feed.Config) any { return c.StageEvery })
	common := func(o *FeedOptions, set map[string]bool) (any, error) {
		return words(o.LogLevel, o.Templates, set["templates"]), nil
	}
	runRows(t, func(o *FeedOptions) func(*flag.FlagSet) { return o.Register }, true, []row[FeedOptions]{
		{"port default", []string{"--all"}, "", port, "30001"},
		{"port config", []string{"--all"}, `{"port": 31000}`, port, "31000"},
		{"port flag", []string{"--all", "--port", "32000"}, "", port, "32000"},
		{"port flag over config", []string{"--all", "--port", "32000"}, `{"port": 31000}`, port, "32000"},
		{"topics config list", nil, `{"topics": ["SBER", "GAZP"]}`, topics, "[SBER GAZP] false"},
		{"topics flag over config", []string{"--topics", "LKOH"}, `{"topics": "SBER,GAZP"}`, topics, "[LKOH] false"},
		{"all config", nil, `{"all": true}`, topics, "[] true"},
		{"group default", []string{"--all"}, "", mapping, "239.0.0.1+16777215"},
		{"group config", []string{"--all"}, `{"group-base": "239.1.0.1", "group-size": 4}`, mapping, "239.1.0.1+4"},
		{"group size flag, base config", []string{"--all", "--group-size", "8"}, `{"group-base": "239.1.0.1", "group-size": 4}`, mapping, "239.1.0.1+8"},
		{"single group flag, base config", []string{"--all", "--single-group"}, `{"group-base": "239.1.0.1"}`, mapping, "single 239.1.0.1"},
		{"gap config", []string{"--all"}, `{"gap-wait": "7ms", "window": 100}`, gap, "7ms 100"},
		{"gap flag over config", []string{"--all", "--gap-wait", "3ms"}, `{"gap-wait": "7ms", "window": 100}`, gap, "3ms 100"},
		{"inject config", []string{"--all"}, `{"inject-loss": 0.25, "inject-line": "B"}`, inject, "0.25 B"},
		{"inject flag over config", []string{"--all", "--inject-loss", "0.5"}, `{"inject-loss": 0.25}`, inject, "0.5 \x00"},
		{"line B config", []string{"--all"}, `{"b-port": 30002, "b-group-base": "239.2.0.1"}`, lineB, "30002 239.2.0.1"},
		{"iface config", []string{"--all"}, `{"iface": "127.0.0.1"}`, iface, "127.0.0.1"},
		{"busy poll default", []string{"--all"}, "", busy, "false false -1 false"},
		{"busy poll flags", []string{"--all", "--busy-poll", "--cpu", "0"}, "", busy, "true true 0 false"},
		{"busy poll config", []string{"--all"}, `{"busy-poll": true, "cpu": 0}`, busy, "true true 0 false"},
		{"shared sockets flag", []string{"--all", "--busy-poll", "--shared-sockets"}, "", busy, "true false -1 true"},
		{"shared sockets config", []string{"--all"}, `{"shared-sockets": true}`, busy, "false false -1 true"},
		{"stage sample default", []string{"--all"}, "", stages, "0"},
		{"stage sample flag", []string{"--all", "--stage-every", "1"}, "", stages, "1"},
		{"stage sample config", []string{"--all"}, `{"stage-every": 4}`, stages, "4"},
		{"common default", []string{"--all"}, "", common, "info fixtures/templates.xml false"},
		{"common config", []string{"--all"}, `{"log-level": "debug", "templates": "x.xml"}`, common, "debug x.xml true"},
		{"common flag over config", []string{"--all", "--log-level", "warn"}, `{"log-level": "debug"}`, common, "warn fixtures/templates.xml false"},
	})
}

func TestReplayPrecedence(t *testing.T) {
	hc := func(get func(feed.Config) any) func(*ReplayOptions, map[string]bool) (any, error) {
		return func(o *ReplayOptions, set map[string]bool) (any, error) {
			cfg, err := o.HandlerConfig(set)
			return get(cfg), err
		}
	}
	topics := hc(func(c feed.Config) any { return fmt.Sprint(c.Topics, c.All) })
	mapping := hc(func(c feed.Config) any { return fmt.Sprint(c.Mapping, c.Port) })
	speed := func(o *ReplayOptions, set map[string]bool) (any, error) { return o.check(set) }
	runRows(t, func(o *ReplayOptions) func(*flag.FlagSet) { return o.Register }, true, []row[ReplayOptions]{
		{"every topic by default", nil, "", topics, "[] true"},
		{"topics config", nil, `{"topics": ["SBER"]}`, topics, "[SBER] false"},
		{"topics flag over config", []string{"--topics", "GAZP,LKOH"}, `{"topics": ["SBER"]}`, topics, "[GAZP LKOH] false"},
		{"mapping config", nil, `{"group-base": "239.3.0.1", "group-size": 2, "port": 40000}`, mapping, "239.3.0.1+2 40000"},
		{"mapping flag over config", []string{"--port", "40001"}, `{"group-base": "239.3.0.1", "group-size": 2, "port": 40000}`, mapping, "239.3.0.1+2 40001"},
		{"speed default", nil, "", speed, "1"},
		{"speed config", nil, `{"speed": 4}`, speed, "4"},
		{"max config", nil, `{"max": true}`, speed, "0"},
		{"speed flag over config", []string{"--speed", "2"}, `{"speed": 4}`, speed, "2"},
	})
}

func TestRecordPrecedence(t *testing.T) {
	groups := func(o *RecordOptions, set map[string]bool) (any, error) {
		g, f, err := o.Resolve(set)
		return fmt.Sprint(g, f), err
	}
	runRows(t, func(o *RecordOptions) func(*flag.FlagSet) { return o.Register }, true, []row[RecordOptions]{
		{"groups flag", []string{"--out", "x", "--groups", "239.1.1.1"}, "", groups, "[239.1.1.1:30001] pcapng"},
		{"groups config", nil, `{"out": "x", "groups": ["239.1.1.1", "239.1.1.2:40000"], "format": "pcap"}`, groups, "[239.1.1.1:30001 239.1.1.2:40000] pcap"},
		{"port flag over config", []string{"--port", "30005"}, `{"out": "x", "groups": "239.1.1.1", "port": 30004}`, groups, "[239.1.1.1:30005] pcapng"},
		{"single group config", []string{"--topics", "SBER,GAZP"}, `{"out": "x", "single-group": true, "group-base": "239.9.0.1"}`, groups, "[239.9.0.1:30001] pcapng"},
		{"definitions config", []string{"--out", "x", "--all"}, `{"definitions-group": "239.9.9.9"}`, groups, "[239.9.9.9:30001] pcapng"},
	})
}

func TestOMSPrecedence(t *testing.T) {
	get := func(o *OMSOptions, set map[string]bool) (any, error) {
		p, err := o.Patterns()
		return words(o.Connect, o.Username, p, o.Interval, o.LogLevel), err
	}
	runRows(t, func(o *OMSOptions) func(*flag.FlagSet) { return o.Register }, true, []row[OMSOptions]{
		{"defaults", nil, "", get, "127.0.0.1:9871 demo [*] 1s info"},
		{"config", nil, `{"connect": "127.0.0.1:1", "username": "u", "subscribe": ["SBER", "GA*"], "interval": "0s", "log-level": "warn"}`, get,
			"127.0.0.1:1 u [SBER GA*] 0s warn"},
		{"flags over config", []string{"--subscribe", "LKOH", "--username", "v"}, `{"username": "u", "subscribe": ["SBER"]}`, get,
			"127.0.0.1:9871 v [LKOH] 1s info"},
	})
}

// pub's --config is the publisher's own format; the flags given win over it the same way.
func TestPubPrecedence(t *testing.T) {
	pc := func(get func(publisher.Config) any) func(*PubOptions, map[string]bool) (any, error) {
		return func(o *PubOptions, set map[string]bool) (any, error) {
			cfg, err := o.PublisherConfig(set)
			return get(cfg), err
		}
	}
	port := pc(func(c publisher.Config) any { return c.Port })
	mapping := pc(func(c publisher.Config) any { return c.Mapping })
	rate := pc(func(c publisher.Config) any { return fmt.Sprint(c.Rate, c.Seed, len(c.Instruments)) })
	defs := pc(func(c publisher.Config) any { return fmt.Sprint(c.DefinitionsGroup, c.B.Port) })
	runRows(t, func(o *PubOptions) func(*flag.FlagSet) { return o.Register }, false, []row[PubOptions]{
		{"port default", nil, "", port, "30001"},
		{"port config", nil, `{"port": 31000}`, port, "31000"},
		{"port flag over config", []string{"--port", "32000"}, `{"port": 31000}`, port, "32000"},
		{"mapping config", nil, `{"groups": {"base": "239.5.0.1", "size": 10}}`, mapping, "239.5.0.1+10"},
		{"group base flag, size config", []string{"--group-base", "239.6.0.1"}, `{"groups": {"base": "239.5.0.1", "size": 10}}`, mapping, "239.6.0.1+10"},
		{"single group flag over config", []string{"--single-group"}, `{"groups": {"base": "239.5.0.1", "size": 10}}`, mapping, "single 239.5.0.1"},
		{"leaving single group", []string{"--single-group=false"}, `{"groups": {"base": "239.0.0.1", "single": true}}`, mapping, "239.0.0.1+16777215"},
		{"rate default", []string{"--instruments", "3"}, "", rate, "1000 1 3"},
		{"rate config", nil, `{"rate": 50, "seed": 9}`, rate, "50 9 10"},
		{"rate flag over config", []string{"--rate", "70"}, `{"rate": 50, "seed": 9}`, rate, "70 9 10"},
		{"definitions flag over config", []string{"--definitions-group", "239.7.7.7", "--b-port", "30009"},
			`{"definitions": {"group": "239.8.8.8"}}`, defs, "239.7.7.7 30009"},
	})
}

// A config file that is wrong in one place fails with an error naming the file, the line
// and the key; a flag given on the command line is checked as before.
func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name, config string
		args         []string
		want         []string
	}{
		{"unknown key", "{\n  \"all\": true,\n  \"topix\": \"SBER\"\n}", nil, []string{"config.json", "line 3", `"topix"`, "fastfeed role"}},
		{"config key", `{"config": "other.json"}`, nil, []string{`unknown key "config"`}},
		{"bad value", "{\"all\": true,\n \"port\": \"x\"}", nil, []string{"line 2", `"port"`, "x"}},
		{"bad duration", `{"gap-wait": 5}`, nil, []string{`"gap-wait"`, "5"}},
		{"object value", `{"inject-loss": {"p": 1}}`, nil, []string{`"inject-loss"`, "want a string"}},
		{"list with commas", `{"topics": ["A,B"]}`, nil, []string{`"topics"`, "element 0"}},
		{"twice", "{\"port\": 1,\n\"port\": 2}", nil, []string{"line 2", "twice"}},
		{"syntax", "{\n\"port\": ,\n}", nil, []string{"config.json", "line 2"}},
		{"not an object", `["port"]`, nil, []string{"want a JSON object"}},
		{"empty", ``, nil, []string{"empty file"}},
		{"trailing data", `{"all": true} {}`, nil, []string{"data after"}},
		{"unclosed", `{"all": true`, nil, []string{"config.json"}},
		{"missing file", "", []string{"--config", "/nonexistent/c.json"}, []string{"/nonexistent/c.json"}},
		{"bad flag with config", `{"all": true}`, []string{"--port", "x"}, []string{"port"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var o FeedOptions
			fs := flag.NewFlagSet("role", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.Register(fs)
			args := tt.args
			if tt.config != "" || tt.name == "empty" {
				args = append([]string{"--config", writeConfig(t, tt.config)}, args...)
			}
			_, err := parse(fs, args, parseOpts{config: "config"})
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want a usage error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not name %q", err, w)
				}
			}
		})
	}
}

// The checks of HandlerConfig that TestConfigErrors of cmd/fastfeed runs through the
// binary, here without a process: each names the flag at fault.
func TestFeedOptionErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "exactly one of --topics"},
		{[]string{"--all", "--topics", "SBER"}, "exactly one of --topics"},
		{[]string{"--topics", "SBER,,GAZP"}, "--topics"},
		{[]string{"--all", "--port", "70000"}, "--port 70000"},
		{[]string{"--all", "--group-base", "10.0.0.1"}, "--group-base"},
		{[]string{"--all", "--group-size", "0"}, "--group-size 0"},
		{[]string{"--all", "--iface", "nosuch0"}, "--iface"},
		{[]string{"--all", "--iface", "10.9.9.9"}, "no interface"},
		{[]string{"--all", "--source", "x"}, "--source"},
		{[]string{"--all", "--b-group-base", "10.0.0.1"}, "--b-group-base"},
		{[]string{"--all", "--inject-loss", "2"}, "--inject-loss 2"},
		{[]string{"--all", "--inject-line", "C"}, "--inject-line"},
		{[]string{"--all", "--window", "-1"}, "--window"},
		{[]string{"--all", "--cpu", "-2"}, "--cpu -2: want a CPU number, 0 or more"},
		{[]string{"--all", "--busy-poll", "--cpu", "4096"}, "--cpu 4096: cpupin: CPU 4096 is not one this process may run on (allowed: "},
		{[]string{"--all", "--cpu", "x"}, `--cpu "x": want a whole number`},
		{[]string{"--all", "--stage-every", "-1"}, "--stage-every -1: want 1 or more"},
	} {
		var o FeedOptions
		set, err := parseRole(t, o.Register, tt.args, "", true)
		if err == nil {
			_, err = o.HandlerConfig(set)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error naming %q", tt.args, err, tt.want)
		}
	}
}

func TestParsePositional(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 0, "")
	c, err := parse(fs, []string{"a", "-n", "3", "b"}, parseOpts{positional: 2})
	if err != nil || *n != 3 || fmt.Sprint(c.pos) != "[a b]" || !c.set["n"] {
		t.Fatalf("parse: %v %d %v", err, *n, c)
	}
	if _, err := parse(fs, []string{"a", "b", "c"}, parseOpts{positional: 2}); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("three positionals of two: %v", err)
	}
	if _, err := parse(fs, []string{"a"}, parseOpts{}); err == nil {
		t.Error("a positional argument accepted where none is")
	}
	if _, err := parse(fs, []string{"-h"}, parseOpts{}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}
