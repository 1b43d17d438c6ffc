package roles

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"fastfeed/internal/passhash"
)

// TestPasswd: the printed hash verifies against the password read from standard input,
// --check tells a match from a mismatch, and bad input is refused with a reason.
func TestPasswd(t *testing.T) {
	run := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := PasswdFrom(strings.NewReader(stdin))(context.Background(), args, &out, &errOut)
		return strings.TrimSpace(out.String()), err
	}
	h, err := run("correct horse\n")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := passhash.Check(h, "correct horse"); !ok || err != nil {
		t.Fatalf("printed hash %q does not verify: %v %v", h, ok, err)
	}
	if ok, _ := passhash.Check(h, "correct horse\n"); ok {
		t.Fatal("the newline ending the input went into the hash")
	}
	if out, err := run("correct horse\r\n", "--check", h); err != nil || out != "ok" {
		t.Errorf("--check with the password: %q, %v", out, err)
	}
	if _, err := run("wrong\n", "--check", h); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("--check with another password: %v", err)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", nil, "empty password"},
		{"\n", nil, "empty password"},
		{strings.Repeat("x", maxPassword+1), nil, "longer than"},
		{"pw\n", []string{"pw"}, "unexpected argument"},
		{"pw\n", []string{"--check", "plain"}, "not an argon2id or bcrypt hash"},
		{"pw\n", []string{"--check", "$argon2id$v=19$m=1"}, "passhash"},
	} {
		_, err := run(tc.stdin, tc.args...)
		var ue *UsageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.want != "longer than" && !errors.As(err, &ue)) {
			t.Errorf("passwd %q < %.20q: %v; want a usage error with %q", tc.args, tc.stdin, err, tc.want)
		}
	}
	if h, err := run(strings.Repeat("y", maxPassword) + "\n"); err != nil || !strings.HasPrefix(h, "$argon2id$") {
		t.Errorf("a %d-byte password: %q, %v", maxPassword, h, err)
	}
}
