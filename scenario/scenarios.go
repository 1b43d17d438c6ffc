package scenario

import (
	"context"
	"fmt"
	"time"

	"fastfeed/feed"
)

// Scenario is one scripted failure: run starts the processes it needs (through env),
// injects its faults, and records in r what it measured and which check failed.
type Scenario struct {
	Name string
	run  func(ctx context.Context, env *Env, r *Result) error
}

// scenarios returns every scenario, in the order of the table.
func All() []Scenario {
	return []Scenario{
		{"5% random loss", scenarioRandomLoss},
		{"10,000-datagram burst (> retention)", scenarioBurst},
		{"loss on line A only", scenarioLineA},
		{"recovery service killed mid-recovery", scenarioRecoveryKilled},
		{"FIX session dropped mid-replay", scenarioSessionDropped},
		{"publisher restarted", scenarioPublisherRestart},
		{"handler restarted mid-stream", scenarioHandlerRestart},
		{"request storm from 20 handlers", scenarioRequestStorm},
		{"multi-host: link cut and restored", scenarioMultiHost},
		{"NATS cluster on 3 hosts: node killed, late subscriber", scenarioNATSCluster},
		{"late join at once, snapshot channels", scenarioLateJoin(true)},
		{"late join at once, FIX snapshots", scenarioLateJoin(false)},
	}
}

func scenarioRandomLoss(ctx context.Context, env *Env, r *Result) error {
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

func scenarioBurst(ctx context.Context, env *Env, r *Result) error {
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

func scenarioLineA(ctx context.Context, env *Env, r *Result) error {
	b := []string{"--b-port", "30002"}
	sts, _, err := env.pubAndFeeds(ctx, r,
		env.publisher(2000, 6000, append(b, "--fix-listen", scenarioFIX, "--linger", "2s")...),
		env.handler(env.runtime(3*time.Second)+4*time.Second, append(b, "--fix-connect", scenarioFIX, "--inject-line", "A",
			"--inject-loss", "0.05", "--inject-burst", "500", "--inject-burst-at", "2000")...))
	if err != nil {
		return err
	}
	st := sts[0]
	if bad := lineACheck(st); bad != "" {
		r.failf("want every datagram lost on line A taken from line B, and no FIX request: %s: %+v", bad, st)
	}
	r.Check = fmt.Sprintf("%d FIX requests", st.Retransmits)
	return nil
}

// lineACheck says what is wrong with the counters of a handler that lost datagrams on
// line A only, or "" when line B made up for every loss. The losses cannot be matched
// one for one with line B's deliveries: a heartbeat, a sequence reset or a definition
// lost on line A takes no sequence number (its copy on line B is not counted as taken
// from B), while a copy read from B before A's even without a loss is. What must hold:
// no hole outlived the wait for line B (Missing counts those), nothing went to FIX or
// snapshots, no instrument's RptSeq skipped, and line B delivered at least the burst.
// With the books, compared apart (their dump carries each instrument's last RptSeq),
// that proves every message lost on line A was taken from line B.
func lineACheck(st feed.Stats) string {
	switch {
	case st.InjectedLoss < 500:
		return fmt.Sprintf("%d datagrams lost, the burst alone is 500", st.InjectedLoss)
	case st.RecoveredAB+st.LineBFirst < 500:
		return fmt.Sprintf("%d datagrams taken from line B, fewer than the burst", st.RecoveredAB+st.LineBFirst)
	case st.Missing != 0:
		return fmt.Sprintf("%d numbers still missing after the wait for line B", st.Missing)
	case st.Retransmits != 0 || st.RecoveredFIX != 0:
		return fmt.Sprintf("%d FIX requests", st.Retransmits)
	case st.Snapshots != 0 || st.Skipped != 0:
		return fmt.Sprintf("%d snapshot recoveries", st.Snapshots)
	case st.RptSeqGaps != 0:
		return fmt.Sprintf("%d RptSeq gaps", st.RptSeqGaps)
	}
	return ""
}

func scenarioRecoveryKilled(ctx context.Context, env *Env, r *Result) error {
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

func scenarioSessionDropped(ctx context.Context, env *Env, r *Result) error {
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

func scenarioPublisherRestart(ctx context.Context, env *Env, r *Result) error {
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

func scenarioHandlerRestart(ctx context.Context, env *Env, r *Result) error {
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

func scenarioRequestStorm(ctx context.Context, env *Env, r *Result) error {
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
