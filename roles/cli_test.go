package roles

import (
	"errors"
	"flag"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestIfaceNameOrAddress: --iface takes an interface's name as well as its address.
func TestIfaceNameOrAddress(t *testing.T) {
	for _, c := range []struct {
		iface string
		want  netip.Addr
		err   string
	}{
		{"lo", netip.MustParseAddr("127.0.0.1"), ""},
		{"127.0.0.1", netip.MustParseAddr("127.0.0.1"), ""},
		{"", netip.Addr{}, ""},
		{"nosuch0", netip.Addr{}, `--iface "nosuch0": want the name or IPv4 address of an interface (this host has lo`},
		{"239.1.1.1", netip.Addr{}, `--iface "239.1.1.1": want the name or IPv4 address of an interface`},
		{"192.0.2.77", netip.Addr{}, "no interface of this host has this address"},
	} {
		n := Network{Iface: c.iface}
		got, err := n.Interface()
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("--iface %q: %v, %v; want %v, %q", c.iface, got, err, c.want, c.err)
		}
	}
}

func testFlagSet() *flag.FlagSet {
	fs := newFlagSet("x", &strings.Builder{}, "usage: fastfeed x [--d D]")
	fs.Duration("d", time.Second, "a `D`")
	fs.Int("n", 0, "a count")
	fs.Bool("b", false, "a switch")
	fs.String("s", "v", "a `word`")
	fs.Float64("p", 0, "a `probability`")
	return fs
}

// TestParseFlagsErrors: -h is a HelpError holding the usage (flags spelt --flag); a bad
// command line a FlagError that says what the flag wants, with the usage to print after.
func TestParseFlagsErrors(t *testing.T) {
	err := parseFlags(testFlagSet(), []string{"-h"})
	var he *HelpError
	if !errors.As(err, &he) || !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(he.Usage, "usage: fastfeed x [--d D]\n  --b\n") ||
		!strings.Contains(he.Usage, "  --d D\n    \ta D (default 1s)\n") || !strings.Contains(he.Usage, `(default "v")`) {
		t.Errorf("-h: %v %q", err, he)
	}
	for _, c := range []struct{ args, msg string }{
		{"--d 5", `--d "5": want a duration such as 5s`},
		{"--n x", `--n "x": want a whole number`},
		{"--n 99999999999999999999", `--n "99999999999999999999": want a whole number (out of range)`},
		{"--b=2", `--b "2": want true or false`},
		{"--p x", `--p "x": want a number such as 0.5`},
		{"--s", `--s needs a value: a word`},
		{"-zz", `unknown flag --zz`},
	} {
		err := parseFlags(testFlagSet(), strings.Fields(c.args))
		var fe *FlagError
		var ue *UsageError
		if !errors.As(err, &fe) || !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), c.msg) || !strings.HasPrefix(fe.Usage, "usage: fastfeed x") {
			t.Errorf("%s: %v, want %q", c.args, err, c.msg)
		}
	}
}

// FuzzParseFlags: any command line parses, or fails with a HelpError or a FlagError whose
// message names a flag spelt --flag; never a panic.
func FuzzParseFlags(f *testing.F) {
	for _, s := range []string{"--d 5", "-h", "--n=x", "--b=maybe", "-s", "--zz", "--p 1e400", "-- x", "--d=-1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := parseFlags(testFlagSet(), strings.Fields(s))
		if err == nil {
			return
		}
		var he *HelpError
		var fe *FlagError
		switch {
		case errors.As(err, &he):
			if !strings.Contains(he.Usage, "--d") {
				t.Fatalf("%q: help without the flags: %q", s, he.Usage)
			}
		case errors.As(err, &fe):
			if !strings.Contains(fe.Msg, "--") && !strings.Contains(fe.Msg, "bad flag syntax") {
				t.Fatalf("%q: %q names no --flag", s, fe.Msg)
			}
		default:
			t.Fatalf("%q: %T %v", s, err, err)
		}
	})
}
