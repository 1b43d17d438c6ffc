package roles

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"fastfeed/internal/fixsession"
)

// The FIX limits of pub and feed --serve-fix: a flag beats feed's config key of the same
// name, which beats a value already there (bus.json's, for feed), which beats the default.
func TestFIXLimitsPrecedence(t *testing.T) {
	from := func(start fixsession.Limits) func(*FeedOptions, map[string]bool) (any, error) {
		return func(o *FeedOptions, set map[string]bool) (any, error) {
			l := start
			err := o.FIXLimits.Apply(&l, set)
			return fmt.Sprint(l.MaxConnections, l.MaxConnectionsPerSource, l.MaxLogonSize, l.LogonTimeout), err
		}
	}
	none, busJSON := from(fixsession.Limits{}), from(fixsession.Limits{MaxConnectionsPerSource: 9, LogonTimeout: 7e9})
	runRows(t, func(o *FeedOptions) func(*flag.FlagSet) { return o.Register }, true, []row[FeedOptions]{
		{"defaults: zero, fixsession fills them", []string{"--all"}, "", none, "0 0 0 0s"},
		{"bus.json kept", []string{"--all"}, "", busJSON, "0 9 0 7s"},
		{"config", []string{"--all"}, `{"fix-max-connections": 50, "fix-logon-timeout": "2s"}`, busJSON, "50 9 0 2s"},
		{"flags over config and bus.json", []string{"--all", "--fix-max-connections-per-source", "3", "--fix-max-logon-size", "1024"},
			`{"fix-max-connections-per-source": 5}`, busJSON, "0 3 1024 7s"},
	})
	var po PubOptions
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	po.Register(fs)
	c, err := parse(fs, []string{"--fix-max-connections", "20", "--fix-logon-timeout", "1s"}, parseOpts{})
	if err != nil {
		t.Fatal(err)
	}
	var l fixsession.Limits
	if err := po.FIXLimits.Apply(&l, c.set); err != nil || l.MaxConnections != 20 || l.LogonTimeout.String() != "1s" {
		t.Errorf("pub: %+v, %v", l, err)
	}
}

func TestFIXLimitsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fix-max-connections", "0"}, "--fix-max-connections 0: want at least 1"},
		{[]string{"--fix-max-connections-per-source", "-2"}, "--fix-max-connections-per-source -2: want at least 1"},
		{[]string{"--fix-max-logon-size", "100"}, "MaxLogonSize 100"},
		{[]string{"--fix-logon-timeout", "0s"}, "--fix-logon-timeout 0s: want a positive duration"},
	} {
		var o FIXLimitOptions
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		o.register(fs, "service")
		c, err := parse(fs, tc.args, parseOpts{})
		if err != nil {
			t.Fatal(err)
		}
		err = o.Apply(&fixsession.Limits{}, c.set)
		if _, usage := err.(*UsageError); !usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error %q", tc.args, err, tc.want)
		}
	}
}
