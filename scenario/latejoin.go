package scenario

// Late join at scale: N handler processes start at once while the publisher is
// mid-stream, with snapshot channels (each handler takes its snapshots from multicast,
// docs/snapshot-channels.md) or without (each asks the FIX recovery service). Every
// handler's books must end equal to the ground truth; with snapshot channels no handler
// asks for a snapshot over TCP and the recovery service sends none. The check column
// gives the time to converge: from the start of the N processes to the last one's books
// all whole (its last snapshot recovery), the slowest and the median handler.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// LateJoinHandlers is how many handlers join late at once in the late-join scenarios of
// `make test` (fastfeed soak --late-handlers sets another number). Both variants converge
// at 100 in seconds (docs/recovery-storm.md), FIX snapshots included: the handlers back
// off and the recovery service serves each channel's snapshots once.
const LateJoinHandlers = 100

// lateJoinBase is the number of handlers the run length of the late-join scenarios is
// made for; each one more adds a little.
const lateJoinBase = 30

func scenarioLateJoin(snapshotChannels bool) func(ctx context.Context, env *Env, r *Result) error {
	return func(ctx context.Context, env *Env, r *Result) error {
		n := env.lateHandlers
		if n <= 0 {
			n = LateJoinHandlers
		}
		const rate, count = 400, 2400 // 6 s of data
		var snap []string
		if snapshotChannels {
			snap = []string{"--snapshot-channels"}
		}
		// The handlers run until every book can be whole: longer with more of them, as
		// the FIX recovery service takes them in turn.
		run := env.runtime(5*time.Second) + 4*time.Second + time.Duration(max(0, n-lateJoinBase))*150*time.Millisecond
		p, err := env.start(ctx, "pub", env.publisher(rate, count, append([]string{"--fix-listen", scenarioFIX, "--linger", (run + 5*time.Second).String(),
			"--fix-max-pending", "1000",
			// every handler connects from 127.0.0.1: beyond the default 64 per address
			// the last ones would be refused
			"--fix-max-connections-per-source", strconv.Itoa(max(64, n+8))}, snap...)...)...)
		if err != nil {
			return err
		}
		defer p.kill()
		if err := p.waitFor(ctx, "msg=publishing"); err != nil {
			return err
		}
		time.Sleep(1500 * time.Millisecond) // mid-stream
		start := time.Now()
		var hs []*proc
		var names []string
		for i := range n {
			name := fmt.Sprintf("feed%d", i)
			args := env.handler(run, append([]string{"--fix-connect", scenarioFIX,
				"--comp-id", "LATE" + strconv.Itoa(i), "--dump-books", env.path(name + ".jsonl"), "--stats-out", env.path(name + ".json")}, snap...)...)
			h, err := env.start(ctx, name, args...)
			if err != nil {
				return err
			}
			hs, names = append(hs, h), append(names, name)
		}
		defer func() {
			for _, h := range hs {
				h.kill()
			}
		}()
		for _, h := range hs {
			if err := h.wait(ctx); err != nil {
				return err
			}
		}
		// The linger only serves the handlers: end it (SIGTERM; the counters are written).
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		if err := p.wait(ctx); err != nil {
			return err
		}
		sts, err := env.compareFeeds(r, names...)
		if err != nil {
			return err
		}
		ps, err := pubStatsFile(env.path("pub.json"))
		if err != nil {
			return err
		}
		if snapshotChannels && (ps.Snapshots != 0 || ps.ChannelW == 0) {
			r.failf("with snapshot channels the recovery service sent %d W over TCP and %d on the snapshot channels; want 0 and some", ps.Snapshots, ps.ChannelW)
		}
		tcp, vs := uint64(0), uint64(0)
		var conv []time.Duration
		for i, st := range sts {
			tcp += st.Snapshots
			var rc struct {
				Client struct {
					Sent uint64 `json:"snapshot_requests"`
				} `json:"recovery_client"`
			}
			if err := readJSONFile(env.path(names[i]+".json"), &rc); err != nil {
				return err
			}
			vs += rc.Client.Sent
			if st.SnapshotsDone == 0 || st.LastSnapshotAt == 0 {
				r.failf("feed%d joined late without a snapshot recovery: %+v", i, st)
				continue
			}
			conv = append(conv, time.Unix(0, st.LastSnapshotAt).Sub(start))
			if snapshotChannels && (st.Snapshots != 0 || st.SnapshotChannelJoins == 0 || st.SnapshotChannelLeaves != st.SnapshotChannelJoins) {
				r.failf("feed%d: want snapshots from the snapshot channels only, each left: %+v", i, st)
			}
			if !snapshotChannels && (st.Snapshots == 0 || st.SnapshotChannelJoins != 0) {
				r.failf("feed%d: want snapshots over FIX: %+v", i, st)
			}
		}
		if len(conv) == 0 {
			return nil
		}
		slices.Sort(conv)
		how := "FIX snapshots"
		if snapshotChannels {
			how = "snapshot channels"
		}
		r.Check = fmt.Sprintf("%s: %d TCP snapshot requests (%d V sent, %d replaced, %d busy), %d W over TCP, publisher %v behind at most (%d recovery turns yielded); converged in %v (median %v)",
			how, tcp, vs, ps.Replaced, ps.Busy, ps.Snapshots, (time.Duration(ps.MaxLagMicros) * time.Microsecond).Round(time.Millisecond), ps.Yields,
			conv[len(conv)-1].Round(time.Millisecond), conv[len(conv)/2].Round(time.Millisecond))
		return nil
	}
}
