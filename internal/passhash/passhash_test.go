package passhash

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashCheck(t *testing.T) {
	h, err := Hash([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || !IsHash(h) {
		t.Fatalf("hash %q: want argon2id with the default parameters", h)
	}
	p, err := Parse(h)
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != h || len(p.Salt) != saltLen || len(p.Key) != keyLen {
		t.Fatalf("Parse(%q) = %+v, String %q", h, p, p.String())
	}
	h2, _ := Hash([]byte("s3cret"))
	if h2 == h {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stored, password string
		want             bool
	}{
		{h, "s3cret", true}, {h, "s3cret ", false}, {h, "", false},
		{string(bc), "s3cret", true}, {string(bc), "secret", false},
		{"demo", "demo", true}, {"demo", "dem", false}, {"demo", "demo\x00", false},
	} {
		got, err := Check(tc.stored, tc.password)
		if err != nil || got != tc.want {
			t.Errorf("Check(%.20q, %q) = %v, %v; want %v", tc.stored, tc.password, got, err, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	if _, err := Parse(good); err != nil {
		t.Fatalf("Parse(good): %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "not an argon2id hash"},
		{"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5", "not an argon2id hash"},
		{strings.Replace(good, "v=19", "v=16", 1), "version"},
		{strings.Replace(good, "m=19456,t=2,p=1", "m=19456,t=2", 1), "want m=M,t=T,p=P"},
		{strings.Replace(good, "t=2", "x=2", 1), "parameter 2"},
		{strings.Replace(good, "m=19456", "m=-1", 1), "not a number"},
		{strings.Replace(good, "m=19456", "m=99999999", 1), "m=99999999"},
		{strings.Replace(good, "t=2", "t=0", 1), "t=0"},
		{strings.Replace(good, "p=1", "p=0", 1), "p=0"},
		{strings.Replace(good, "p=1", "p=300", 1), "p=300"},
		{strings.Replace(good, "c2FsdHNhbHRzYWx0c2FsdA", "c2Fsd", 1), "salt"},
		{strings.Replace(good, "c2FsdHNhbHRzYWx0c2FsdA", "c2FsdA==", 1), "salt"},
		{good[:len(good)-20], "key"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v; want an error with %q", tc.in, err, tc.want)
		}
	}
	if _, err := NewUsers(map[string]string{"bob": "$2a$xx"}); err == nil || !strings.Contains(err.Error(), `user "bob"`) {
		t.Errorf("NewUsers with a bad bcrypt hash: %v; want an error naming the user", err)
	}
	if _, err := NewUsers(map[string]string{"al": "$argon2id$v=19$m=1"}); err == nil || !strings.Contains(err.Error(), `user "al"`) {
		t.Errorf("NewUsers with a bad argon2id hash: %v; want an error naming the user", err)
	}
}

func TestUsers(t *testing.T) {
	h, err := Hash([]byte("pw-alice"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUsers(map[string]string{"alice": h, "demo": "demo", "bob": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := u.ClearText(); len(got) != 2 || got[0] != "bob" || got[1] != "demo" {
		t.Fatalf("ClearText = %q; want [bob demo]", got)
	}
	for range 2 { // the second round hits the cache of passed logins
		for _, tc := range []struct {
			user, pw string
			want     bool
		}{
			{"alice", "pw-alice", true}, {"alice", "pw-alicE", false}, {"alice", "demo", false},
			{"demo", "demo", true}, {"demo", "pw-alice", false}, {"bob", "b", true},
			{"carol", "pw-alice", false}, {"", "", false}, {"carol", "", false},
		} {
			if got := u.Check(tc.user, tc.pw); got != tc.want {
				t.Errorf("Check(%q, %q) = %v; want %v", tc.user, tc.pw, got, tc.want)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$2a$10$abcdefghijklmnopqrstuv")
	f.Add("demo")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Parse(s)
		if err != nil {
			return
		}
		if h.Memory > maxMemory || h.Time == 0 || h.Time > maxTime || h.Threads == 0 ||
			len(h.Salt) < minSaltLen || len(h.Key) < minKeyLen {
			t.Fatalf("Parse(%q) accepted out-of-bounds %+v", s, h)
		}
		if h2, err := Parse(h.String()); err != nil || h2.String() != h.String() {
			t.Fatalf("round trip of %q: %q, %v", s, h2.String(), err)
		}
	})
}

// BenchmarkCheck is the cost of one login check by how the password is stored; "cached"
// is a second check of a login that passed (Users' keyed digest).
func BenchmarkCheck(b *testing.B) {
	a, err := Hash([]byte("pw"))
	if err != nil {
		b.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, stored, pw string
	}{
		{"clear", "pw", "pw"}, {"argon2id", a, "wrong"}, {"argon2id-cached", a, "pw"}, {"bcrypt10", string(bc), "wrong"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			u, err := NewUsers(map[string]string{"u": tc.stored})
			if err != nil {
				b.Fatal(err)
			}
			u.Check("u", tc.pw)
			for b.Loop() {
				u.Check("u", tc.pw)
			}
		})
	}
}
