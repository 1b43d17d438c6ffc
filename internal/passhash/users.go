package passhash

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"runtime"
	"slices"
	"sync"
)

// maxCached bounds the logins Users remembers as passed.
const maxCached = 4096

// Users checks logins against stored passwords. Its methods may be called
// concurrently.
type Users struct {
	users map[string]verifier
	dummy verifier // checked for an unknown username, so it costs what a known one does
	clear []string
	sem   chan struct{} // bounds the hash checks running at once

	key    [32]byte // keys the digests of passed logins
	mu     sync.Mutex
	passed map[string][32]byte // username: HMAC(key, username, password) of its last login that passed
}

// NewUsers reads the stored passwords of logins, username to password (a hash or clear
// text); a malformed hash is an error naming its user.
func NewUsers(logins map[string]string) (*Users, error) {
	u := &Users{users: make(map[string]verifier, len(logins)), passed: make(map[string][32]byte),
		sem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))}
	if _, err := rand.Read(u.key[:]); err != nil {
		return nil, fmt.Errorf("passhash: %w", err)
	}
	hashed := false
	for name, stored := range logins {
		v, err := newVerifier(stored)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
		if _, ok := v.(clearText); ok {
			u.clear = append(u.clear, name)
		} else {
			hashed = true
		}
		u.users[name] = v
	}
	slices.Sort(u.clear)
	u.dummy = clearText("\x00unknown user")
	if hashed {
		s, err := Hash([]byte("unknown user"))
		if err != nil {
			return nil, err
		}
		h, _ := Parse(s)
		u.dummy = argonHash{h}
	}
	return u, nil
}

// ClearText returns the users whose password is stored in clear text, sorted.
func (u *Users) ClearText() []string { return slices.Clone(u.clear) }

// Check reports whether password is username's.
func (u *Users) Check(username, password string) bool {
	mac := hmac.New(sha256.New, u.key[:])
	mac.Write([]byte(username))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var d [32]byte
	mac.Sum(d[:0])
	u.mu.Lock()
	prev, ok := u.passed[username]
	u.mu.Unlock()
	if ok && subtle.ConstantTimeCompare(prev[:], d[:]) == 1 {
		return true
	}
	v, known := u.users[username]
	if !known {
		v = u.dummy
	}
	u.sem <- struct{}{}
	pass := v.verify([]byte(password))
	<-u.sem
	if !pass || !known {
		return false
	}
	u.mu.Lock()
	if len(u.passed) >= maxCached {
		clear(u.passed)
	}
	u.passed[username] = d
	u.mu.Unlock()
	return true
}
