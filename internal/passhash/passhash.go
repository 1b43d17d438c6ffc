// Package passhash stores and checks the passwords of FIX logins: argon2id (as
// "$argon2id$v=19$m=...,t=...,p=...$salt$key", the PHC string format) or bcrypt
// ("$2a$", "$2b$", "$2y$"), from golang.org/x/crypto. A stored value that is neither
// is a clear-text password, still accepted (the demo configs) and compared in
// constant time; Users.ClearText names those users so their owner can warn.
//
// Hash makes argon2id strings with OWASP's minimum parameters (m=19 MiB, t=2, p=1),
// about 20-40 ms of one core each. Users bounds the checks running at once, so a
// burst of logons costs bounded memory, and remembers a login that passed (a keyed
// digest, not the password) so that the FIX session's second look at the same Logon
// is cheap.
package passhash

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Parameters of the argon2id hashes Hash makes.
const (
	DefaultMemory  = 19 * 1024 // KiB
	DefaultTime    = 2
	DefaultThreads = 1
	saltLen        = 16
	keyLen         = 32
)

// Bounds of the argon2id parameters Parse accepts.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	maxSaltLen = 64
	maxKeyLen  = 128
	minSaltLen = 8
	minKeyLen  = 16
)

// Argon2id is a parsed argon2id hash.
type Argon2id struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	Salt    []byte
	Key     []byte
}

// Hash returns the argon2id hash of password with a fresh random salt and the default
// parameters.
func Hash(password []byte) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passhash: salt: %w", err)
	}
	h := Argon2id{Memory: DefaultMemory, Time: DefaultTime, Threads: DefaultThreads, Salt: salt}
	h.Key = argon2.IDKey(password, salt, h.Time, h.Memory, h.Threads, keyLen)
	return h.String(), nil
}

// String returns h in the PHC string format.
func (h Argon2id) String() string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.Memory, h.Time, h.Threads,
		enc.EncodeToString(h.Salt), enc.EncodeToString(h.Key))
}

// Verify reports whether password hashes to h's key, compared in constant time.
func (h Argon2id) Verify(password []byte) bool {
	k := argon2.IDKey(password, h.Salt, h.Time, h.Memory, h.Threads, uint32(len(h.Key)))
	return subtle.ConstantTimeCompare(k, h.Key) == 1
}

// IsHash reports whether stored is meant as a hash (argon2id or bcrypt) rather than a
// clear-text password: it starts with "$argon2" or "$2".
func IsHash(stored string) bool {
	return strings.HasPrefix(stored, "$argon2") || strings.HasPrefix(stored, "$2")
}

// Parse reads an argon2id hash in the PHC string format, with its parameters within
// bounds (memory up to 1 GiB, time up to 64, salt 8 to 64 bytes, key 16 to 128).
func Parse(s string) (Argon2id, error) {
	var h Argon2id
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, errors.New(`passhash: not an argon2id hash: want "$argon2id$v=19$m=M,t=T,p=P$SALT$KEY"`)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, fmt.Errorf("passhash: argon2id version %q: want v=%d", parts[2], argon2.Version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return h, fmt.Errorf("passhash: argon2id parameters %q: want m=M,t=T,p=P", parts[3])
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return h, fmt.Errorf("passhash: argon2id parameter %d %q: want %s=N", i+1, params[i], name)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return h, fmt.Errorf("passhash: argon2id parameter %s=%q: not a number", name, v)
		}
		switch name {
		case "m":
			h.Memory = uint32(n)
		case "t":
			h.Time = uint32(n)
		case "p":
			if n > 255 {
				return h, fmt.Errorf("passhash: argon2id p=%d: want 1 to 255", n)
			}
			h.Threads = uint8(n)
		}
	}
	switch {
	case h.Threads == 0:
		return h, errors.New("passhash: argon2id p=0: want 1 to 255")
	case h.Time == 0 || h.Time > maxTime:
		return h, fmt.Errorf("passhash: argon2id t=%d: want 1 to %d", h.Time, maxTime)
	case h.Memory < 8*uint32(h.Threads) || h.Memory > maxMemory:
		return h, fmt.Errorf("passhash: argon2id m=%d: want %d to %d KiB", h.Memory, 8*uint32(h.Threads), maxMemory)
	}
	var err error
	enc := base64.RawStdEncoding.Strict()
	if h.Salt, err = enc.DecodeString(parts[4]); err != nil || len(h.Salt) < minSaltLen || len(h.Salt) > maxSaltLen {
		return h, fmt.Errorf("passhash: argon2id salt: want %d to %d bytes in unpadded base64", minSaltLen, maxSaltLen)
	}
	if h.Key, err = enc.DecodeString(parts[5]); err != nil || len(h.Key) < minKeyLen || len(h.Key) > maxKeyLen {
		return h, fmt.Errorf("passhash: argon2id key: want %d to %d bytes in unpadded base64", minKeyLen, maxKeyLen)
	}
	return h, nil
}

// A verifier checks one stored password.
type verifier interface{ verify(password []byte) bool }

type clearText []byte

func (c clearText) verify(p []byte) bool { return subtle.ConstantTimeCompare(c, p) == 1 }

type bcryptHash []byte

func (b bcryptHash) verify(p []byte) bool { return bcrypt.CompareHashAndPassword(b, p) == nil }

type argonHash struct{ Argon2id }

func (a argonHash) verify(p []byte) bool { return a.Verify(p) }

// newVerifier reads a stored password: a hash, checked, or clear text.
func newVerifier(stored string) (verifier, error) {
	switch {
	case strings.HasPrefix(stored, "$argon2"):
		h, err := Parse(stored)
		if err != nil {
			return nil, err
		}
		return argonHash{h}, nil
	case strings.HasPrefix(stored, "$2"):
		if _, err := bcrypt.Cost([]byte(stored)); err != nil {
			return nil, fmt.Errorf("passhash: bcrypt hash: %w", err)
		}
		return bcryptHash(stored), nil
	}
	return clearText(bytes.Clone([]byte(stored))), nil
}

// Validate reports a malformed hash in stored; clear text is valid.
func Validate(stored string) error {
	_, err := newVerifier(stored)
	return err
}

// Check reports whether password matches stored: an argon2id or bcrypt hash, or a
// clear-text password compared in constant time. A malformed hash is an error.
func Check(stored, password string) (bool, error) {
	v, err := newVerifier(stored)
	if err != nil {
		return false, err
	}
	return v.verify([]byte(password)), nil
}
