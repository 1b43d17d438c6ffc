// Package scenario is fastfeed's fault-scenario harness: the scripted failures fastfeed
// is certified against, each running the publisher and one or more handlers as separate
// processes of the fastfeed binary in the private network namespace the caller is in
// (internal/netns), with its faults injected in the project's own code, a TCP relay
// between the handlers and the FIX recovery service that can kill it or cut its
// sessions, and for the multi-host scenario a bridge of namespaced hosts. Each checks
// that every handler's books end equal to the publisher's ground truth and that the
// counters tell how they got there.
//
// `make test` runs them (TestScenarios) and prints their table ([WriteTable]); `fastfeed
// soak` runs them again and again with more data ([Soak]). A new scenario is a function
// added to [All].
package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/internal/netns"
)

// Result is one row of the scenario table.
type Result struct {
	Name         string
	Handlers     int
	Datagrams    uint64 // datagrams the handlers read, summed
	Injected     uint64 // datagrams the faults removed (loss and bursts), summed
	Gaps         uint64
	RecoveredAB  uint64 // holes filled by the other line, and datagrams taken from line B for a missing A
	RecoveredFIX uint64
	Snapshots    uint64 // snapshot recoveries applied
	BooksEqual   bool
	Check        string // what else the scenario asserted, as measured
	Elapsed      time.Duration
	Err          error // why the scenario failed; nil when it passed
}

func (r *Result) add(st feed.Stats) {
	r.Handlers++
	r.Datagrams += st.Datagrams
	r.Injected += st.InjectedLoss
	r.Gaps += st.Gaps
	r.RecoveredAB += st.RecoveredAB + st.LineBFirst
	r.RecoveredFIX += st.RecoveredFIX
	r.Snapshots += st.SnapshotsDone
	if st.ABMismatch != 0 || st.AuthFailures != 0 {
		// Nothing forges datagrams in the scenarios: two copies of one number differ
		// only if the handler compares what it should not.
		r.failf("handler %d: %d differing copies of one sequence number, %d authentication failures", r.Handlers, st.ABMismatch, st.AuthFailures)
	}
}

// failf records a failed check; the first one is kept.
func (r *Result) failf(format string, args ...any) {
	if r.Err == nil {
		r.Err = fmt.Errorf(format, args...)
	}
}

// Env is what a scenario runs with.
type Env struct {
	bin   string // the fastfeed executable
	dir   string // a scratch directory for dumps, counters and logs
	scale int    // multiplies the data of each scenario (1 in tests, more in soak)
	seed  uint64 // varies the faults and the data between soak rounds
	// lateHandlers is how many handlers the late-join scenarios start at once; 0 means
	// LateJoinHandlers.
	lateHandlers int
}

// runOne runs s with a bound on its time and returns its row.
func runOne(ctx context.Context, env *Env, s Scenario) Result {
	r := Result{Name: s.Name}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := s.run(ctx, env, &r); err != nil {
		r.Err = err
	}
	r.Elapsed = time.Since(start)
	return r
}

// Ports of the scenarios' services, inside their private network namespace.
const (
	scenarioFIX   = "127.0.0.1:9870"
	scenarioRelay = "127.0.0.1:9880"
)

// scenarioSymbols are the instruments of the scenarios' publisher (fastfeed pub
// --instruments 8 generates these).
var scenarioSymbols = []string{"SBER", "GAZP", "LKOH", "GMKN", "AAPL", "MSFT", "NVDA", "USD000UTSTOM"}

func (env *Env) path(name string) string { return filepath.Join(env.dir, name) }

func (env *Env) count(n int) string { return strconv.Itoa(n * env.scale) }

func (env *Env) seedArg(base int) string {
	return strconv.FormatUint(uint64(base)+env.seed, 10)
}

// pubArgs are a publisher's flags: 8 instruments, rate datagrams/s, count of them, ground
// truth to dump, counters to stats.
func (env *Env) pubArgs(rate, count int, dump, stats string, more ...string) []string {
	return append([]string{"pub", "--instruments", strconv.Itoa(len(scenarioSymbols)), "--rate", strconv.Itoa(rate),
		"--count", env.count(count), "--seed", env.seedArg(1), "--dump-books", dump, "--stats-out", stats}, more...)
}

// feedArgs are a handler's flags for every scenario symbol, stopping after d.
func (env *Env) feedArgs(d time.Duration, dump, stats string, more ...string) []string {
	return env.handler(d, append([]string{"--dump-books", dump, "--stats-out", stats}, more...)...)
}

// runtime scales a handler's running time with the data.
func (env *Env) runtime(base time.Duration) time.Duration {
	return base * time.Duration(env.scale)
}

// proc is a running fastfeed command whose log (stderr) is kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{}
	err  error
}

// logBuffer keeps a process's log for waitFor and copies it to a file.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	file io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 1<<20 {
		l.buf.Write(p)
	}
	return l.file.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// start runs the fastfeed binary with args, its log going to name.log in the scratch
// directory. It refuses to run outside a private network namespace.
func (env *Env) start(ctx context.Context, name string, args ...string) (*proc, error) {
	return env.startCmd(ctx, name, env.bin, args...)
}

// startCmd runs program with args like start.
func (env *Env) startCmd(ctx context.Context, name, program string, args ...string) (*proc, error) {
	cmd, err := netns.Command(ctx, program, args...)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(env.path(name + ".log"))
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, log: &logBuffer{file: f}, done: make(chan struct{})}
	cmd.Stderr, cmd.Stdout = p.log, p.log
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// waitFor waits until the process logs want.
func (p *proc) waitFor(ctx context.Context, want string) error {
	for !strings.Contains(p.log.String(), want) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: no %q in its log: %w\n%s", p.name, want, ctx.Err(), tail(p.log.String()))
		case <-p.done:
			if !strings.Contains(p.log.String(), want) {
				return fmt.Errorf("%s exited (%v) before logging %q\n%s", p.name, p.err, want, tail(p.log.String()))
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// wait waits for the process to exit and reports how it went.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		p.kill()
		<-p.done
		return fmt.Errorf("%s did not stop: %w\n%s", p.name, ctx.Err(), tail(p.log.String()))
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w\n%s", p.name, p.err, tail(p.log.String()))
	}
	return nil
}

// kill ends the process at once (SIGKILL), as a crash would.
// interrupt asks the process to stop gracefully (SIGINT: it writes its dumps and
// counters), unless it has already ended.
func (p *proc) interrupt() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGINT)
	}
}

// outlastMargin is how much longer than its --duration a handler started by pubAndFeeds
// may run: pubAndFeeds stops it when the publisher has stopped.
const outlastMargin = 30 * time.Second

// outlastPublisher lengthens a handler's --duration by outlastMargin: it is a bound now,
// not the end.
func outlastPublisher(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "--duration" {
			if d, err := time.ParseDuration(out[i+1]); err == nil {
				out[i+1] = (d + outlastMargin).String()
			}
		}
	}
	return out
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
}

// tail returns the end of a log, for an error message.
func tail(s string) string {
	const keep = 4000
	if len(s) > keep {
		s = "..." + s[len(s)-keep:]
	}
	return s
}

// waitAll waits for every process, returning the first failure.
func waitAll(ctx context.Context, ps ...*proc) error {
	var first error
	for _, p := range ps {
		if err := p.wait(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func readDumpFile(path string) (book.Dump, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := book.ReadDump(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// compare reads a handler's dump and counters, adds them to r and checks its books
// against the ground truth want; it returns the counters.
func compare(r *Result, want book.Dump, name, dump, stats string) (feed.Stats, error) {
	var st feed.Stats
	got, err := readDumpFile(dump)
	if err != nil {
		return st, err
	}
	if err := readJSONFile(stats, &st); err != nil {
		return st, err
	}
	r.add(st)
	if r.Handlers == 1 {
		r.BooksEqual = true
	}
	if d := book.DiffDumps(got, want); d != "" {
		r.BooksEqual = false
		r.failf("%s: books differ from the ground truth:\n%s", name, d)
	}
	if st.StaleBooks != 0 {
		r.BooksEqual = false
		r.failf("%s: %d books stale at exit", name, st.StaleBooks)
	}
	if len(got) != len(want) {
		r.BooksEqual = false
		r.failf("%s: %d books, the publisher has %d", name, len(got), len(want))
	}
	return st, nil
}

// pubStats is what the scenarios read of pub --stats-out.
type pubStats struct {
	MaxLagMicros int64  `json:"max_lag_us"`                 // the most the paced sending fell behind
	Requests     uint64 `json:"fix_requests"`               // MarketDataRequests received
	Snapshots    uint64 `json:"snapshots_sent"`             // W sent by the recovery service (over TCP)
	ChannelW     uint64 `json:"snapshot_channel_datagrams"` // W sent on the snapshot channels
	Busy         uint64 `json:"fix_busy"`                   // requests refused as too many pending
	Replaced     uint64 `json:"fix_replaced"`               // snapshot requests that replaced a duplicate queued
	Yields       uint64 `json:"fix_yields"`                 // recovery turns that waited for the multicast
}

// pubStatsFile reads pub --stats-out.
func pubStatsFile(path string) (pubStats, error) {
	var s pubStats
	return s, readJSONFile(path, &s)
}

// pubAndFeeds runs a publisher and the given handlers (started first, and waited for)
// and compares each handler's books with the ground truth. Handler i is named feed<i>.
func (env *Env) pubAndFeeds(ctx context.Context, r *Result, pubArgs []string, feeds ...[]string) ([]feed.Stats, pubStats, error) {
	var hs []*proc
	for i, args := range feeds {
		name := fmt.Sprintf("feed%d", i)
		low := args[0] == lowPriority
		if low {
			args = args[1:]
		}
		args = append([]string{args[0], "--dump-books", env.path(name + ".jsonl"), "--stats-out", env.path(name + ".json")}, args[1:]...)
		args = outlastPublisher(args)
		var h *proc
		var err error
		if low {
			h, err = env.startCmd(ctx, name, "nice", append([]string{"-n", "19", env.bin}, args...)...)
		} else {
			h, err = env.start(ctx, name, args...)
		}
		if err != nil {
			return nil, pubStats{}, err
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		if err := h.waitFor(ctx, "feed handler started"); err != nil {
			return nil, pubStats{}, err
		}
	}
	p, err := env.start(ctx, "pub", pubArgs...)
	if err != nil {
		return nil, pubStats{}, err
	}
	// The handlers stop when the publisher has stopped (its data and its linger, during
	// which it heartbeats and serves recovery): on a loaded machine a handler's own
	// --duration could end while the publisher was still sending, leaving its books behind
	// the ground truth with no gap to show for it.
	perr := p.wait(ctx)
	for _, h := range hs {
		h.interrupt()
	}
	if err := waitAll(ctx, hs...); err != nil || perr != nil {
		return nil, pubStats{}, errors.Join(perr, err)
	}
	ps, err := pubStatsFile(env.path("pub.json"))
	if err != nil {
		return nil, ps, err
	}
	var names []string
	for i := range hs {
		names = append(names, fmt.Sprintf("feed%d", i))
	}
	sts, err := env.compareFeeds(r, names...)
	return sts, ps, err
}

// compareFeeds compares the books of the named handlers (their dumps and counters are
// NAME.jsonl and NAME.json in the scratch directory) with the publisher's ground truth
// pub.jsonl, adding their counters to r.
func (env *Env) compareFeeds(r *Result, names ...string) ([]feed.Stats, error) {
	want, err := readDumpFile(env.path("pub.jsonl"))
	if err != nil {
		return nil, err
	}
	var sts []feed.Stats
	for _, name := range names {
		st, err := compare(r, want, name, env.path(name+".jsonl"), env.path(name+".json"))
		if err != nil {
			return nil, err
		}
		sts = append(sts, st)
	}
	return sts, nil
}

// lowPriority, as the first argument of a handler given to pubAndFeeds, runs it at the
// lowest CPU priority (nice 19): it stands for a handler on another machine, which
// must not take the publisher's CPUs away from it.
const lowPriority = "@low"

// handler is a feed's flags without the dump and counter files, which pubAndFeeds adds.
func (env *Env) handler(d time.Duration, more ...string) []string {
	return append([]string{"feed", "--topics", strings.Join(scenarioSymbols, ","), "--duration", d.String(),
		"--inject-seed", env.seedArg(7)}, more...)
}

func (env *Env) publisher(rate, count int, more ...string) []string {
	return env.pubArgs(rate, count, env.path("pub.jsonl"), env.path("pub.json"), more...)
}

// WriteTable writes the table of results, one row per scenario.
func WriteTable(w io.Writer, rs []Result) error {
	var b strings.Builder
	b.WriteString("| scenario | handlers | datagrams | losses injected | gaps | recovered A/B | recovered FIX | snapshots | books equal | check | time |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|---|---|--:|\n")
	for _, r := range rs {
		// Books equal says what the comparison found, nothing else: a scenario that
		// failed another check says so in the check column.
		eq := "yes"
		switch {
		case r.Handlers == 0:
			eq = "not compared"
		case !r.BooksEqual:
			eq = "NO"
		}
		check := r.Check
		if r.Err != nil {
			check = "FAILED: " + strings.ReplaceAll(firstLine(r.Err.Error()), "|", "/")
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s | %.1fs |\n", r.Name, r.Handlers, r.Datagrams,
			r.Injected, r.Gaps, r.RecoveredAB, r.RecoveredFIX, r.Snapshots, eq, check, r.Elapsed.Seconds())
	}
	_, err := io.WriteString(w, b.String())
	return err
}
