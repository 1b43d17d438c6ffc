package publisher

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/quickfixgo/quickfix"

	"fastfeed/md"
)

// work serves sess's requests, one at a time, until the session ends or is
// cut off.
func (s *RecoveryService) work(sess *recoverySession) {
	defer s.wg.Done()
	codec, err := md.NewCodec(s.p.Templates())
	if err != nil { // cannot happen: the publisher built one from the same templates
		s.log.Error("recovery service: no codec", "err", err)
		return
	}
	for {
		select {
		case <-sess.ctx.Done():
			return
		case req := <-sess.reqs:
			sess.mu.Lock()
			if scope, ok := snapshotScope(&req); ok {
				if last, ok := sess.queued[scope]; ok {
					req = last // replaced meanwhile by a request for the same snapshots
				}
				delete(sess.queued, scope)
			}
			sess.mu.Unlock()
			queued := time.Now()
			ok := s.serve(sess, codec, &req)
			s.log.Debug("recovery request served", "session", sess.id.String(), "mdreqid", req.MDReqID,
				"took", time.Since(queued), "complete", ok)
			sess.mu.Lock()
			delete(sess.pending, req.MDReqID)
			sess.mu.Unlock()
			if !ok {
				return
			}
		}
	}
}

// serve answers req, a slice per turn, waiting for room between slices. It
// reports false once the session is gone or cut off.
func (s *RecoveryService) serve(sess *recoverySession, codec *md.Codec, req *md.MarketDataRequest) bool {
	var ans *answer
	for first := true; first || ans != nil && ans.next < ans.n; first = false {
		if err := s.waitRoom(sess); err != nil {
			return false
		}
		if err := s.turns.acquire(sess.ctx); err != nil {
			return false
		}
		if err := s.yieldToSchedule(sess.ctx); err != nil {
			s.turns.release()
			return false
		}
		if first {
			ans = s.prepare(sess, codec, req)
		}
		ok := ans == nil || s.sendSlice(sess, ans)
		s.turns.release()
		if !ok {
			return false
		}
	}
	return true
}

// answer is an answer being sent: msg(i) makes its i-th message, of n.
type answer struct {
	reqID string
	n     int
	msg   func(i int) (*quickfix.Message, error)
	next  int            // the next message to send
	sent  *atomic.Uint64 // counts the messages sent
}

// sendSlice sends the next answerSlice messages of ans. It reports false once
// the session is gone.
func (s *RecoveryService) sendSlice(sess *recoverySession, ans *answer) bool {
	end := min(ans.next+answerSlice, ans.n)
	for ; ans.next < end; ans.next++ {
		msg, err := ans.msg(ans.next)
		if err != nil {
			s.log.Error("recovery service: retained datagram", "err", err)
			s.reject(sess, ans.reqID, md.RejectInsufficientBandwidth, "internal error: "+err.Error())
			ans.next = ans.n
			return true
		}
		if err := s.acc.Send(sess.id, msg); err != nil {
			return false // the session is gone
		}
		ans.sent.Add(1)
	}
	return true
}

// errTooSlow ends the service of a session cut off for reading too slowly.
var errTooSlow = errors.New("recovery client too slow to take its answer")

// waitRoom waits until less than RecoveryOptions.InFlight bytes of sess's
// answers wait for its client, measuring meanwhile how fast the client takes
// them: one that takes less than MinRate over RateWindow of such waiting is
// cut off (errTooSlow).
func (s *RecoveryService) waitRoom(sess *recoverySession) error {
	if s.acc.InFlight(sess.id) == 0 { // the client took all it was given: a new measure
		sess.behind, sess.took = 0, 0
	}
	for {
		start, w0 := time.Now(), s.acc.Written(sess.id)
		ctx, cancel := context.WithTimeout(sess.ctx, s.opts.RateWindow-sess.behind)
		err := s.acc.WaitRoom(ctx, sess.id, s.opts.InFlight)
		cancel()
		sess.behind += time.Since(start)
		sess.took += s.acc.Written(sess.id) - w0
		switch {
		case sess.ctx.Err() != nil:
			return sess.ctx.Err()
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			return err // the session ended
		}
		if sess.behind >= s.opts.RateWindow {
			rate := float64(sess.took) / sess.behind.Seconds()
			if rate < float64(s.opts.MinRate) {
				s.cutOff(sess, rate)
				return errTooSlow
			}
			sess.behind, sess.took = 0, 0
		}
		if err == nil {
			return nil
		}
	}
}

// cutOff logs out a session too slow to take its answers, and closes its
// connection without waiting for what it did not read.
func (s *RecoveryService) cutOff(sess *recoverySession, rate float64) {
	s.tooSlow.Add(1)
	reason := fmt.Sprintf("too slow: took %.1f KiB/s of its recovery answers over %v, the minimum is %.1f KiB/s",
		rate/1024, sess.behind.Round(time.Millisecond), float64(s.opts.MinRate)/1024)
	s.log.Warn("recovery client too slow to take its answer: logged out", "session", sess.id.String(),
		"bytes_per_s", int64(rate), "window", sess.behind.Round(time.Millisecond), "min_bytes_per_s", s.opts.MinRate,
		"in_flight", s.acc.InFlight(sess.id))
	if err := s.acc.LogoutAndClose(sess.id, reason); err != nil {
		s.log.Debug("recovery service: logout", "session", sess.id.String(), "err", err)
	}
	sess.cancel()
}

// Recovery is served with what the multicast leaves: a turn taken while the publisher
// is more than behindLimit behind its schedule waits, holding the turn (the other
// sessions wait theirs without polling), until it has caught up, checking every
// yieldStep, for at most maxYield, so that a publisher that cannot keep up does not
// starve recovery altogether.
const (
	behindLimit = 20 * time.Millisecond
	yieldStep   = 5 * time.Millisecond
	maxYield    = 500 * time.Millisecond
)

// yieldToSchedule waits while the publisher is behind its schedule (see behindLimit).
func (s *RecoveryService) yieldToSchedule(ctx context.Context) error {
	if s.p.Behind() <= behindLimit {
		return nil
	}
	s.yields.Add(1)
	t := time.NewTimer(yieldStep)
	defer t.Stop()
	for end := time.Now().Add(maxYield); s.p.Behind() > behindLimit && time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			t.Reset(yieldStep)
		}
	}
	return nil
}
