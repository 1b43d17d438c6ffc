package roles

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"fastfeed/internal/passhash"
)

// maxPassword bounds the password passwd reads.
const maxPassword = 1024

// Passwd is fastfeed passwd: it reads a password from standard input (prompting, with
// echo off, when that is a terminal) and prints its argon2id hash, the form a config's
// "password" takes; with --check HASH it reports whether the password matches HASH.
// The password is never a flag: command lines show in ps and shell histories.
func Passwd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return PasswdFrom(os.Stdin)(ctx, args, stdout, stderr)
}

// PasswdFrom is Passwd reading the password from in.
func PasswdFrom(in io.Reader) Func {
	return func(_ context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet("passwd", stderr,
			"usage: fastfeed passwd [--check HASH] < password",
			"\nReads a password (one line) from standard input, or prompts for it, and prints its argon2id",
			"hash for the \"password\" of a user in bus.json or pub.json. --check tells whether the password",
			"matches a hash instead.")
		check := fs.String("check", "", "report whether the password matches this `hash` (exit status 1 if not)")
		if _, err := parse(fs, args, parseOpts{}); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("passwd takes no arguments: the password comes from standard input")
		}
		if *check != "" && !passhash.IsHash(*check) {
			return usagef("--check %q: not an argon2id or bcrypt hash", *check)
		}
		pw, err := readPassword(in, stderr)
		if err != nil {
			return err
		}
		if *check != "" {
			ok, err := passhash.Check(*check, pw)
			switch {
			case err != nil:
				return usagef("--check: %v", err)
			case !ok:
				return errors.New("the password does not match")
			}
			fmt.Fprintln(stdout, "ok")
			return nil
		}
		h, err := passhash.Hash([]byte(pw))
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, h)
		return nil
	}
}

// readPassword reads one line from in, prompting on stderr with echo off when in is a
// terminal.
func readPassword(in io.Reader, stderr io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(stderr, "password: ")
		restore := echoOff(f)
		defer func() {
			restore()
			fmt.Fprintln(stderr)
		}()
	}
	r := bufio.NewReaderSize(io.LimitReader(in, maxPassword+2), maxPassword+2)
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if len(line) > maxPassword+1 || (len(line) == maxPassword+1 && !strings.HasSuffix(line, "\n")) {
		return "", fmt.Errorf("password longer than %d bytes", maxPassword)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", usagef("empty password (give it on standard input)")
	}
	return line, nil
}
