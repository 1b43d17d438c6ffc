package fixsession

import (
	"sync"
	"time"
)

// Failed logons lock out both the username they named and the address they came from:
// after Limits.MaxLogonFailures failures in a row (none older than Limits.Lockout
// apart), every Logon naming that username or coming from that address is refused,
// without a password check, until Limits.Lockout has passed since the last failure. A
// logon that passes clears both records. Locking a username lets anyone who knows it
// keep its owner out while guessing; locking the address alone would let a guesser
// spread over addresses guess on. Both are counted and logged.

// maxLockoutEntries bounds the usernames and addresses remembered; when full, records
// whose lockout has passed are dropped, and if none has, new names go untracked.
const maxLockoutEntries = 1 << 16

type failRecord struct {
	count int
	last  time.Time
}

// lockout remembers failed logons by username and by source address.
type lockout struct {
	max  int
	span time.Duration
	now  func() time.Time

	mu   sync.Mutex
	recs map[string]*failRecord // "u:"+username or "a:"+address
}

func newLockout(maxFailures int, span time.Duration) *lockout {
	return &lockout{max: maxFailures, span: span, now: time.Now, recs: make(map[string]*failRecord)}
}

// locked returns the key (username or address) that is locked out now, "" if neither.
func (l *lockout) locked(username, addr string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range []string{"u:" + username, "a:" + addr} {
		if r := l.recs[k]; r != nil && r.count >= l.max {
			if now.Sub(r.last) < l.span {
				return k
			}
			delete(l.recs, k) // served its lockout: a fresh start
		}
	}
	return ""
}

// fail records a failed logon; it returns the keys that it locked out.
func (l *lockout) fail(username, addr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var locked []string
	for _, k := range []string{"u:" + username, "a:" + addr} {
		r := l.recs[k]
		if r == nil {
			if len(l.recs) >= maxLockoutEntries {
				l.sweep(now)
				if len(l.recs) >= maxLockoutEntries {
					continue
				}
			}
			r = &failRecord{}
			l.recs[k] = r
		}
		if now.Sub(r.last) >= l.span {
			r.count = 0 // the earlier failures are too old to count
		}
		r.count++
		r.last = now
		if r.count == l.max {
			locked = append(locked, k)
		}
	}
	return locked
}

// pass clears the records of a logon that passed.
func (l *lockout) pass(username, addr string) {
	l.mu.Lock()
	delete(l.recs, "u:"+username)
	delete(l.recs, "a:"+addr)
	l.mu.Unlock()
}

func (l *lockout) sweep(now time.Time) {
	for k, r := range l.recs {
		if now.Sub(r.last) >= l.span {
			delete(l.recs, k)
		}
	}
}
