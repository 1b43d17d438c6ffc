package fixsession

// Request limits of a logged-on session: how many application messages a client may send
// per second. Over the limit a message gets a session-level Reject (3) with the reason in
// its Text (58); a client that goes on is logged out.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quickfixgo/quickfix"
)

// RequestLimits bounds the application messages of each logged-on session. The zero value
// sets no limit.
type RequestLimits struct {
	// PerSecond is the sustained rate of application messages a session may send; 0 is
	// no limit. Burst (default PerSecond) is how many may come at once.
	PerSecond, Burst int
	// MaxRejects is how many messages over the limit a session may send, each less than
	// rejectMemory after the one before, before it is logged out (default
	// DefaultMaxLimitRejects).
	MaxRejects int
	// ReadPerSecond is the most messages per second an Acceptor's guard reads from one
	// client connection after its Logon and passes on to quickfix (ReadPerSecond at once
	// at most Burst); what a client sends faster waits in its own connection (TCP
	// backpressure: its writes block). So a flood costs the service a bounded amount of
	// work, whatever the client sends: the messages over PerSecond still get their
	// Rejects, and the Logout after MaxRejects, at this pace. 0 means DefaultReadFactor
	// times PerSecond; with PerSecond 0 the guard reads as fast as the client sends.
	ReadPerSecond int
}

// DefaultReadFactor is RequestLimits.ReadPerSecond, when zero, over PerSecond.
const DefaultReadFactor = 10

// DefaultMaxLimitRejects is RequestLimits.MaxRejects when zero.
const DefaultMaxLimitRejects = 100

// Check reports a negative limit.
func (l RequestLimits) Check() error {
	if l.PerSecond < 0 || l.Burst < 0 || l.MaxRejects < 0 || l.ReadPerSecond < 0 {
		return fmt.Errorf("negative limit in %+v", l)
	}
	return nil
}

// LimitStats are the counters of an Acceptor's RequestLimits.
type LimitStats struct {
	RateRejects uint64 `json:"rate_rejects"` // messages rejected over PerSecond
	RateLogouts uint64 `json:"rate_logouts"` // sessions logged out for going on
	ReadPauses  uint64 `json:"read_pauses"`  // pauses in reading a client over ReadPerSecond (TCP backpressure)
}

// Session-level Reject reason (373) for a message over a limit: 99, Other.
const rejectReasonOther = 99

// limiter applies RequestLimits to the sessions of an Acceptor.
type limiter struct {
	lim     RequestLimits
	now     func() time.Time
	rejects atomic.Uint64
	logouts atomic.Uint64
	pauses  atomic.Uint64

	mu      sync.Mutex
	buckets map[quickfix.SessionID]*bucket
}

type bucket struct {
	tokens     float64
	last       time.Time
	over       int       // rejects, each less than rejectMemory after the one before
	lastReject time.Time // of the last reject
	logging    bool      // a Logout was sent
}

// rejectMemory: a reject this long after the one before starts the count of a session's
// rejects again.
const rejectMemory = time.Second

func newLimiter(l RequestLimits) *limiter {
	if l.PerSecond == 0 {
		return nil
	}
	if l.Burst == 0 {
		l.Burst = l.PerSecond
	}
	if l.MaxRejects == 0 {
		l.MaxRejects = DefaultMaxLimitRejects
	}
	if l.ReadPerSecond == 0 {
		l.ReadPerSecond = DefaultReadFactor * l.PerSecond
	}
	return &limiter{lim: l, now: time.Now, buckets: map[quickfix.SessionID]*bucket{}}
}

// admit takes a token for one message of session id. It returns nil if the message is
// within the limit, else the Reject to answer with and whether to log the session out.
func (l *limiter) admit(id quickfix.SessionID) (quickfix.MessageRejectError, bool) {
	now := l.now()
	l.mu.Lock()
	b := l.buckets[id]
	if b == nil {
		b = &bucket{tokens: float64(l.lim.Burst), last: now}
		l.buckets[id] = b
	}
	b.tokens = min(float64(l.lim.Burst), b.tokens+now.Sub(b.last).Seconds()*float64(l.lim.PerSecond))
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		l.mu.Unlock()
		return nil, false
	}
	if now.Sub(b.lastReject) >= rejectMemory {
		b.over = 0
	}
	b.over++
	b.lastReject = now
	logout := b.over >= l.lim.MaxRejects && !b.logging
	if logout {
		b.logging = true
	}
	l.mu.Unlock()
	l.rejects.Add(1)
	if logout {
		l.logouts.Add(1)
	}
	return quickfix.NewMessageRejectError(fmt.Sprintf("request rate over the limit of %d per second", l.lim.PerSecond),
		rejectReasonOther, nil), logout
}

// forget drops session id's bucket when it logs out.
func (l *limiter) forget(id quickfix.SessionID) {
	l.mu.Lock()
	delete(l.buckets, id)
	l.mu.Unlock()
}

func (l *limiter) stats() LimitStats {
	if l == nil {
		return LimitStats{}
	}
	return LimitStats{RateRejects: l.rejects.Load(), RateLogouts: l.logouts.Load(), ReadPauses: l.pauses.Load()}
}

// pacer paces the guard's reading of one client connection to ReadPerSecond messages
// (a token bucket of Burst that may go one message into debt, paid by waiting). It
// belongs to the connection's inbound goroutine.
type pacer struct {
	rate, burst float64
	tokens      float64
	last        time.Time
	pauses      *atomic.Uint64
}

// pacer returns a pacer for a new client connection, nil if the limits set no pace.
func (l *limiter) pacer(now time.Time) *pacer {
	if l == nil || l.lim.ReadPerSecond <= 0 {
		return nil
	}
	burst := float64(max(1, l.lim.Burst))
	return &pacer{rate: float64(l.lim.ReadPerSecond), burst: burst, tokens: burst, last: now, pauses: &l.pauses}
}

// take takes a token for one message read at now, and returns how long to wait before
// passing it on: 0 within the pace.
func (p *pacer) take(now time.Time) time.Duration {
	p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
	p.last = now
	p.tokens--
	if p.tokens >= 0 {
		return 0
	}
	p.pauses.Add(1)
	return time.Duration(-p.tokens / p.rate * float64(time.Second))
}

// reasonRateLogout is the Text (58) of the Logout of a session that goes on over the limit.
const reasonRateLogout = "request rate over the limit: logged out"

// LimitStats returns the counters of the acceptor's RequestLimits.
func (a *Acceptor) LimitStats() LimitStats { return a.app.limiter.stats() }
