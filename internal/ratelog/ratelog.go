// Package ratelog limits how many lines a cause may write to a log per second, so that
// a client sending garbage cannot fill the disk with warnings about it. Lines over the
// limit are counted, not written; the count is reported on the cause's next line and,
// if the cause goes quiet, in a summary line when its second ends.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPerSecond is the lines a cause may write per second when New is given 0.
const DefaultPerSecond = 32

// Logger writes at most perSecond lines per cause per second to a *slog.Logger. A cause
// is a fixed string chosen by the caller (what went wrong, not who did it), so there are
// few of them. It is safe for concurrent use.
type Logger struct {
	l         *slog.Logger
	perSecond int
	now       func() time.Time

	suppressed atomic.Uint64 // lines not written, all causes

	mu     sync.Mutex
	causes map[string]*window
	closed bool
}

// window is one cause's current second.
type window struct {
	start      time.Time
	written    int
	suppressed uint64 // in this window, not yet reported
	timer      *time.Timer
}

// New returns a Logger writing to l (nil: nowhere) at most perSecond lines per cause per
// second (0: DefaultPerSecond).
func New(l *slog.Logger, perSecond int) *Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if perSecond <= 0 {
		perSecond = DefaultPerSecond
	}
	return &Logger{l: l, perSecond: perSecond, now: time.Now, causes: make(map[string]*window)}
}

// Warn logs msg with args at Warn under cause, if the cause has not used up its second.
func (r *Logger) Warn(cause, msg string, args ...any) { r.Log(slog.LevelWarn, cause, msg, args...) }

// Info logs msg with args at Info under cause, if the cause has not used up its second.
func (r *Logger) Info(cause, msg string, args ...any) { r.Log(slog.LevelInfo, cause, msg, args...) }

// Log logs msg with args at level under cause, if the cause has not used up its second;
// otherwise it counts the line as suppressed. The first line of a second that follows
// suppressed ones carries their number as "suppressed".
func (r *Logger) Log(level slog.Level, cause, msg string, args ...any) {
	if !r.l.Enabled(context.Background(), level) {
		return
	}
	now := r.now()
	r.mu.Lock()
	w := r.causes[cause]
	if w == nil {
		w = &window{start: now}
		r.causes[cause] = w
	}
	var carried uint64
	if now.Sub(w.start) >= time.Second {
		carried, w.suppressed = w.suppressed, 0
		w.start, w.written = now, 0
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
	}
	if w.written >= r.perSecond {
		w.suppressed++
		r.suppressed.Add(1)
		if w.timer == nil && !r.closed {
			w.timer = time.AfterFunc(w.start.Add(time.Second).Sub(now), func() { r.summarize(cause, level) })
		}
		r.mu.Unlock()
		return
	}
	w.written++
	r.mu.Unlock()
	if carried > 0 {
		args = append(args, "suppressed", carried)
	}
	r.l.Log(context.Background(), level, msg, args...)
}

// summarize reports the lines of cause suppressed in a second that has ended with no
// line after them.
func (r *Logger) summarize(cause string, level slog.Level) {
	r.mu.Lock()
	w := r.causes[cause]
	if w == nil || w.timer == nil {
		r.mu.Unlock()
		return
	}
	n := w.suppressed
	w.suppressed, w.timer = 0, nil
	r.mu.Unlock()
	if n > 0 {
		r.l.Log(context.Background(), level, "log lines suppressed", "cause", cause, "suppressed", n, "limit_per_second", r.perSecond)
	}
}

// Suppressed returns how many lines were not written, all causes together.
func (r *Logger) Suppressed() uint64 { return r.suppressed.Load() }

// Close reports the lines suppressed and not yet reported, and stops the timers.
func (r *Logger) Close() {
	r.mu.Lock()
	r.closed = true
	type pending struct {
		cause string
		n     uint64
	}
	var out []pending
	for cause, w := range r.causes {
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
		if w.suppressed > 0 {
			out = append(out, pending{cause, w.suppressed})
			w.suppressed = 0
		}
	}
	r.mu.Unlock()
	for _, p := range out {
		r.l.Warn("log lines suppressed", "cause", p.cause, "suppressed", p.n, "limit_per_second", r.perSecond)
	}
}
