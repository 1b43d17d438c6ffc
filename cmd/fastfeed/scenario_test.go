package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScenarios runs every fault scenario (scenario.go) against the built binary, each
// in this test's private network namespace, one after another. The table of results is
// logged, and written to the file $FASTFEED_SCENARIO_TABLE names (make test prints it).
func TestScenarios(t *testing.T) {
	bin := fastfeedBinary(t)
	var results []scenarioResult
	for _, s := range scenarios() {
		if f := os.Getenv("SCENARIO"); f != "" && !strings.Contains(s.name, f) {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			env := &scenarioEnv{bin: bin, dir: t.TempDir(), scale: 1}
			if keep := os.Getenv("FASTFEED_SCENARIO_LOGS"); keep != "" { // keep the logs for a look
				env.dir = filepath.Join(keep, strings.Map(fileSafe, s.name))
				if err := os.MkdirAll(env.dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			r := runScenario(context.Background(), env, s)
			results = append(results, r)
			if r.Err != nil {
				t.Fatalf("%v (logs in %s)", r.Err, env.dir)
			}
			if !r.BooksEqual {
				t.Fatal("books differ from the ground truth")
			}
		})
	}
	var table strings.Builder
	if err := writeScenarioTable(&table, results); err != nil {
		t.Fatal(err)
	}
	t.Logf("scenarios:\n%s", table.String())
	if path := os.Getenv("FASTFEED_SCENARIO_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(table.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// fileSafe maps a scenario name to a directory name.
func fileSafe(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
		return r
	}
	return '_'
}

func TestSumRounds(t *testing.T) {
	rs := []scenarioResult{
		{Name: "a", Handlers: 1, Datagrams: 10, Injected: 1, Gaps: 1, RecoveredFIX: 1, BooksEqual: true, Check: "x"},
		{Name: "b", Handlers: 2, Datagrams: 5, BooksEqual: true},
		{Name: "a", Handlers: 1, Datagrams: 20, Injected: 2, Gaps: 2, RecoveredFIX: 2, BooksEqual: false, Check: "y"},
	}
	got := sumRounds(rs)
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Fatalf("rows %+v", got)
	}
	a := got[0]
	if a.Datagrams != 30 || a.Injected != 3 || a.Gaps != 3 || a.RecoveredFIX != 3 || a.BooksEqual || a.Check != "1 of 2 runs passed; last: y" {
		t.Errorf("a: %+v", a)
	}
	if !got[1].BooksEqual || got[1].Handlers != 2 {
		t.Errorf("b: %+v", got[1])
	}
	var table strings.Builder
	if err := writeScenarioTable(&table, got); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[2], "| a | 1 | 30 | 3 | 3 | 0 | 3 | 0 | NO |") || !strings.Contains(lines[3], "| yes |") {
		t.Errorf("table:\n%s", table.String())
	}
}

// TestSoakCommand runs one short round of one scenario through the command.
func TestSoakCommand(t *testing.T) {
	bin := fastfeedBinary(t)
	code, stdout, stderr := fastfeed(t, context.Background(), bin, "soak", "--duration", "1ms", "--scale", "1", "--only", "publisher restarted")
	if code != 0 || !strings.Contains(stdout, "every handler's books equal") || !strings.Contains(stdout, "| publisher restarted | 1 |") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, _, stderr := fastfeed(t, context.Background(), bin, "soak", "--only", "no such scenario"); code == 0 || !strings.Contains(stderr, "matches no scenario") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
