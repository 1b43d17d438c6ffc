package main

import (
	"bytes"
	"context"
	"encoding/json"
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

// The fault scenarios fastfeed is certified against. Each runs the publisher and one
// or more handlers as separate processes of the fastfeed binary, in the private network
// namespace the caller is in, injects its faults, and checks that every handler's books
// end equal to the publisher's ground truth and that the counters tell how they got
// there. `make test` runs them (TestScenarios) and prints their table; `fastfeed soak`
// runs them again and again with more data.

// scenarioResult is one row of the scenario table.
type scenarioResult struct {
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

func (r *scenarioResult) add(st feed.Stats) {
	r.Handlers++
	r.Datagrams += st.Datagrams
	r.Injected += st.InjectedLoss
	r.Gaps += st.Gaps
	r.RecoveredAB += st.RecoveredAB + st.LineBFirst
	r.RecoveredFIX += st.RecoveredFIX
	r.Snapshots += st.SnapshotsDone
}

// failf records a failed check; the first one is kept.
func (r *scenarioResult) failf(format string, args ...any) {
	if r.Err == nil {
		r.Err = fmt.Errorf(format, args...)
	}
}

// scenarioEnv is what a scenario runs with.
type scenarioEnv struct {
	bin   string // the fastfeed executable
	dir   string // a scratch directory for dumps, counters and logs
	scale int    // multiplies the data of each scenario (1 in tests, more in soak)
	seed  uint64 // varies the faults and the data between soak rounds
}

// scenario is one scripted failure.
type scenario struct {
	name string
	run  func(ctx context.Context, env *scenarioEnv, r *scenarioResult) error
}

// scenarios returns every scenario, in the order of the table.
func scenarios() []scenario {
	return []scenario{
		{"5% random loss", scenarioRandomLoss},
		{"10,000-datagram burst (> retention)", scenarioBurst},
		{"loss on line A only", scenarioLineA},
		{"recovery service killed mid-recovery", scenarioRecoveryKilled},
		{"FIX session dropped mid-replay", scenarioSessionDropped},
		{"publisher restarted", scenarioPublisherRestart},
		{"handler restarted mid-stream", scenarioHandlerRestart},
		{"request storm from 20 handlers", scenarioRequestStorm},
		{"multi-host: link cut and restored", scenarioMultiHost},
	}
}

// runScenario runs s with a bound on its time and returns its row.
func runScenario(ctx context.Context, env *scenarioEnv, s scenario) scenarioResult {
	r := scenarioResult{Name: s.name}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := s.run(ctx, env, &r); err != nil {
		r.Err = err
	}
	r.Elapsed = time.Since(start)
	if r.Err != nil {
		r.BooksEqual = false
	}
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

func (env *scenarioEnv) path(name string) string { return filepath.Join(env.dir, name) }

func (env *scenarioEnv) count(n int) string { return strconv.Itoa(n * env.scale) }

func (env *scenarioEnv) seedArg(base int) string {
	return strconv.FormatUint(uint64(base)+env.seed, 10)
}

// pubArgs are a publisher's flags: 8 instruments, rate datagrams/s, count of them, ground
// truth to dump, counters to stats.
func (env *scenarioEnv) pubArgs(rate, count int, dump, stats string, more ...string) []string {
	return append([]string{"pub", "--instruments", strconv.Itoa(len(scenarioSymbols)), "--rate", strconv.Itoa(rate),
		"--count", env.count(count), "--seed", env.seedArg(1), "--dump-books", dump, "--stats-out", stats}, more...)
}

// feedArgs are a handler's flags for every scenario symbol, stopping after d.
func (env *scenarioEnv) feedArgs(d time.Duration, dump, stats string, more ...string) []string {
	return env.handler(d, append([]string{"--dump-books", dump, "--stats-out", stats}, more...)...)
}

// runtime scales a handler's running time with the data.
func (env *scenarioEnv) runtime(base time.Duration) time.Duration {
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
func (env *scenarioEnv) start(ctx context.Context, name string, args ...string) (*proc, error) {
	return env.startCmd(ctx, name, env.bin, args...)
}

// startCmd runs program with args like start.
func (env *scenarioEnv) startCmd(ctx context.Context, name, program string, args ...string) (*proc, error) {
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
func compare(r *scenarioResult, want book.Dump, name, dump, stats string) (feed.Stats, error) {
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

// pubStatsFile reads pub --stats-out.
func pubStatsFile(path string) (pubStats, error) {
	var s pubStats
	return s, readJSONFile(path, &s)
}

// pubAndFeeds runs a publisher and the given handlers (started first, and waited for)
// and compares each handler's books with the ground truth. Handler i is named feed<i>.
func (env *scenarioEnv) pubAndFeeds(ctx context.Context, r *scenarioResult, pubArgs []string, feeds ...[]string) ([]feed.Stats, pubStats, error) {
	var hs []*proc
	for i, args := range feeds {
		name := fmt.Sprintf("feed%d", i)
		low := args[0] == lowPriority
		if low {
			args = args[1:]
		}
		args = append([]string{args[0], "--dump-books", env.path(name + ".jsonl"), "--stats-out", env.path(name + ".json")}, args[1:]...)
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
	if err := waitAll(ctx, append([]*proc{p}, hs...)...); err != nil {
		return nil, pubStats{}, err
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
func (env *scenarioEnv) compareFeeds(r *scenarioResult, names ...string) ([]feed.Stats, error) {
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
func (env *scenarioEnv) handler(d time.Duration, more ...string) []string {
	return append([]string{"feed", "--topics", strings.Join(scenarioSymbols, ","), "--duration", d.String(),
		"--inject-seed", env.seedArg(7)}, more...)
}

func (env *scenarioEnv) publisher(rate, count int, more ...string) []string {
	return env.pubArgs(rate, count, env.path("pub.jsonl"), env.path("pub.json"), more...)
}

func scenarioRandomLoss(ctx context.Context, env *scenarioEnv, r *scenarioResult) error {
	sts, _, err := env.pubAndFeeds(ctx, r,
		env.publisher(2000, 6000, "--fix-listen", scenarioFIX, "--linger", "3s"),
		env.handler(env.runtime(3*time.Second)+5*time.Second, "--fix-connect", scenarioFIX, "--inject-loss", "0.05"))
	if err != nil {
		return err
	}
	st := sts[0]
	if st.InjectedLoss == 0 || st.Gaps == 0 || st.RecoveredFIX == 0 {
		r.failf("counters: %+v", st)
	}
	r.Check = fmt.Sprintf("%d FIX requests", st.Retransmits)
	return nil
}

func scenarioBurst(ctx context.Context, env *scenarioEnv, r *scenarioResult) error {
	sts, _, err := env.pubAndFeeds(ctx, r,
		env.publisher(8000, 24000, "--fix-listen", scenarioFIX, "--linger", "3s", "--retention", "4000"),
		env.handler(env.runtime(3*time.Second)+5*time.Second, "--fix-connect", scenarioFIX,
			"--inject-burst", "10000", "--inject-burst-at", "4000"))
	if err != nil {
		return err
	}
	st := sts[0]
	if st.InjectedLoss != 10000 || st.SnapshotsDone == 0 || st.RecoveredFIX != 0 {
		r.failf("counters: want 10000 lost, snapshots and nothing by FIX: %+v", st)
	}
	r.Check = fmt.Sprintf("retention 4000: %d retransmission refused", st.RecoveryFails)
	return nil
}

func scenarioLineA(ctx context.Context, env *scenarioEnv, r *scenarioResult) error {
	b := []string{"--b-port", "30002"}
	sts, _, err := env.pubAndFeeds(ctx, r,
		env.publisher(2000, 6000, append(b, "--fix-listen", scenarioFIX, "--linger", "2s")...),
		env.handler(env.runtime(3*time.Second)+4*time.Second, append(b, "--fix-connect", scenarioFIX, "--inject-line", "A",
			"--inject-loss", "0.05", "--inject-burst", "500", "--inject-burst-at", "2000")...))
	if err != nil {
		return err
	}
	st := sts[0]
	if st.InjectedLoss < 500 || st.RecoveredAB+st.LineBFirst < st.InjectedLoss || st.Retransmits != 0 || st.Snapshots != 0 {
		r.failf("want every hole filled by line B and no FIX request: %+v", st)
	}
	r.Check = fmt.Sprintf("%d FIX requests", st.Retransmits)
	return nil
}

func scenarioRecoveryKilled(ctx context.Context, env *scenarioEnv, r *scenarioResult) error {
	relay, err := newFaultRelay(scenarioRelay, scenarioFIX)
	if err != nil {
		return err
	}
	defer relay.Close()
	const down = 1500 * time.Millisecond
	relay.onRequest(10, func() { // at the tenth request, "kill" the service: reset, refuse, come back
		relay.kill()
		time.AfterFunc(down, func() { _ = relay.restart() })
	})
	sts, _, err := env.pubAndFeeds(ctx, r,
		env.publisher(2000, 16000, "--fix-listen", scenarioFIX, "--linger", "5s"),
		env.handler(env.runtime(8*time.Second)+7*time.Second, "--fix-connect", scenarioRelay, "--inject-loss", "0.03"))
	if err != nil {
		return err
	}
	st := sts[0]
	kills, _ := relay.counts()
	if kills != 1 || st.RecoveryFails == 0 || st.RecoveredFIX == 0 {
		r.failf("want the service killed once, a failed recovery and later ones over FIX: %d kills, %+v", kills, st)
	}
	r.Check = fmt.Sprintf("down %v: %d recoveries failed", down, st.RecoveryFails)
	return nil
}

func scenarioSessionDropped(ctx context.Context, env *scenarioEnv, r *scenarioResult) error {
	relay, err := newFaultRelay(scenarioRelay, scenarioFIX)
	if err != nil {
		return err
	}
	defer relay.Close()
	relay.cutAfterReplies(100) // 100 retransmitted messages into the replay of the burst
	sts, _, err := env.pubAndFeeds(ctx, r,
		env.publisher(4000, 12000, "--fix-listen", scenarioFIX, "--linger", "5s"),
		env.handler(env.runtime(3*time.Second)+7*time.Second, "--fix-connect", scenarioRelay, "--recovery-timeout", "5s",
			"--inject-burst", "1500", "--inject-burst-at", "3000", "--inject-loss", "0.01"))
	if err != nil {
		return err
	}
	st := sts[0]
	_, cuts := relay.counts()
	// Waiting up to 5 s for a retransmission covers the reconnection (1-2 s): what the
	// cut interrupted is asked again and everything comes over FIX.
	if cuts != 1 || st.Missing < 1500 || st.RecoveredFIX != st.Missing || st.SnapshotsDone != 0 {
		r.failf("want one session cut and every loss recovered over FIX: %d cuts, %+v", cuts, st)
	}
	r.Check = fmt.Sprintf("cut after 100 replies; the rest asked again after the reconnection")
	return nil
}

func scenarioPublisherRestart(ctx context.Context, env *scenarioEnv, r *scenarioResult) error {
	h, err := env.start(ctx, "feed0", env.feedArgs(env.runtime(2*time.Second)+4*time.Second, env.path("feed0.jsonl"), env.path("feed0.json"))...)
	if err != nil {
		return err
	}
	if err := h.waitFor(ctx, "feed handler started"); err != nil {
		return err
	}
	first, err := env.start(ctx, "pub-first", env.pubArgs(2000, 2000, env.path("first.jsonl"), env.path("first.json"))...)
	if err != nil {
		return err
	}
	if err := first.wait(ctx); err != nil {
		return err
	}
	second, err := env.start(ctx, "pub", append(env.publisher(2000, 2000), "--seed", env.seedArg(2))...)
	if err != nil {
		return err
	}
	if err := waitAll(ctx, second, h); err != nil {
		return err
	}
	sts, err := env.compareFeeds(r, "feed0")
	if err != nil {
		return err
	}
	st := sts[0]
	if st.Resets == 0 || st.Gaps != 0 {
		r.failf("want SequenceResets and no gap: %+v", st)
	}
	r.Check = fmt.Sprintf("%d SequenceResets", st.Resets)
	return nil
}

func scenarioHandlerRestart(ctx context.Context, env *scenarioEnv, r *scenarioResult) error {
	first, err := env.start(ctx, "feed-first", "feed", "--all", "--fix-connect", scenarioFIX)
	if err != nil {
		return err
	}
	defer first.kill()
	if err := first.waitFor(ctx, "feed handler started"); err != nil {
		return err
	}
	p, err := env.start(ctx, "pub", env.publisher(2000, 8000, "--fix-listen", scenarioFIX, "--linger", "4s",
		"--definitions-interval", "500ms")...)
	if err != nil {
		return err
	}
	if err := p.waitFor(ctx, "msg=publishing"); err != nil {
		return err
	}
	time.Sleep(time.Second * time.Duration(env.scale))
	first.kill() // a crash: no logout, no dump
	<-first.done
	h, err := env.start(ctx, "feed0", "feed", "--all", "--fix-connect", scenarioFIX, "--duration", (env.runtime(3*time.Second) + 4*time.Second).String(),
		"--dump-books", env.path("feed0.jsonl"), "--stats-out", env.path("feed0.json"))
	if err != nil {
		return err
	}
	if err := waitAll(ctx, p, h); err != nil {
		return err
	}
	sts, err := env.compareFeeds(r, "feed0")
	if err != nil {
		return err
	}
	st := sts[0]
	if st.SnapshotsDone == 0 {
		r.failf("want the restarted handler to join by snapshots: %+v", st)
	}
	r.Check = fmt.Sprintf("late join: %d snapshot recoveries", st.SnapshotsDone)
	return nil
}

// stormHandlers is how many handlers ask for the same retransmission at once.
const stormHandlers = 20

func scenarioRequestStorm(ctx context.Context, env *scenarioEnv, r *scenarioResult) error {
	feeds := [][]string{env.handler(env.runtime(3*time.Second) + 6*time.Second)} // feed0 watches the multicast, no faults
	for i := 0; i < stormHandlers; i++ {
		feeds = append(feeds, append([]string{lowPriority}, env.handler(env.runtime(3*time.Second)+6*time.Second, "--fix-connect", scenarioFIX,
			"--comp-id", fmt.Sprintf("STORM%02d", i), "--inject-burst", "500", "--inject-burst-at", "2000")...))
	}
	sts, ps, err := env.pubAndFeeds(ctx, r, env.publisher(2000, 6000, "--fix-listen", scenarioFIX, "--linger", "4s"), feeds...)
	if err != nil {
		return err
	}
	if w := sts[0]; w.Gaps != 0 || w.KernelDrops != 0 {
		r.failf("the watching handler saw gaps on the multicast: %+v", w)
	}
	for i, st := range sts[1:] {
		if st.RecoveredFIX == 0 {
			r.failf("feed%d recovered nothing over FIX: %+v", i+1, st)
		}
	}
	if ps.Requests < stormHandlers {
		r.failf("the recovery service had %d requests, want at least %d", ps.Requests, stormHandlers)
	}
	// A stall would show as the publisher falling behind its schedule by about the
	// time the storm takes to serve; on a loaded 2-CPU machine scheduling alone can
	// delay it by tens of milliseconds, so the bound is loose.
	if lag := time.Duration(ps.MaxLagMicros) * time.Microsecond; lag > time.Second {
		r.failf("the publisher fell %v behind its schedule", lag)
	}
	r.Check = fmt.Sprintf("%d requests; multicast max lag %v", ps.Requests, time.Duration(ps.MaxLagMicros)*time.Microsecond)
	return nil
}

// writeScenarioTable writes the table of results, one row per scenario.
func writeScenarioTable(w io.Writer, rs []scenarioResult) error {
	var b strings.Builder
	b.WriteString("| scenario | handlers | datagrams | losses injected | gaps | recovered A/B | recovered FIX | snapshots | books equal | check | time |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|---|---|--:|\n")
	for _, r := range rs {
		eq := "yes"
		if !r.BooksEqual || r.Err != nil {
			eq = "NO"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s | %.1fs |\n", r.Name, r.Handlers, r.Datagrams,
			r.Injected, r.Gaps, r.RecoveredAB, r.RecoveredFIX, r.Snapshots, eq, r.Check, r.Elapsed.Seconds())
	}
	_, err := io.WriteString(w, b.String())
	return err
}
