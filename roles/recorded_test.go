package roles

import (
	"flag"
	"strings"
	"testing"
)

// TestRecordedRoundTrip: the settings record keeps are read back and applied under the
// flags given; a comment that is not record's is not taken; a bad value is an error
// naming the flag.
func TestRecordedRoundTrip(t *testing.T) {
	o := RecordOptions{Topics: "SBER,GAZP"}
	o.Port, o.DefsGroup, o.GroupBase, o.GroupSize = 30177, "239.77.0.0", "239.77.1.1", 3
	o.Templates = DefaultTemplates
	r := o.recorded(map[string]bool{"topics": true, "group-base": true, "group-size": true}, nil)
	got, ok, err := parseRecorded(r.Comment())
	if !ok || err != nil {
		t.Fatalf("parseRecorded: ok %v, %v", ok, err)
	}
	if got.TemplatesSHA256 == "" || len(got.TemplatesSHA256) != 64 {
		t.Errorf("templates digest %q", got.TemplatesSHA256)
	}
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	var ro ReplayOptions
	ro.Register(fs)
	if err := fs.Parse([]string{"--port", "30001"}); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{"port": true}
	applied, missing, err := applyRecorded(fs, set, got)
	if err != nil || len(missing) != 0 {
		t.Fatal(applied, missing, err)
	}
	if strings.Join(applied, ",") != "definitions-group,group-base,group-size,topics" {
		t.Errorf("applied %v", applied)
	}
	if ro.Feed.Port != 30001 || ro.Feed.Topics != "SBER,GAZP" || ro.Feed.GroupSize != 3 || ro.Feed.DefsGroup != "239.77.0.0" {
		t.Errorf("after apply: port %d (the flag given wins), topics %q, group size %d, definitions %q",
			ro.Feed.Port, ro.Feed.Topics, ro.Feed.GroupSize, ro.Feed.DefsGroup)
	}
	if _, ok, _ := parseRecorded("captured by dumpcap"); ok {
		t.Error("another recorder's comment taken as record's")
	}
	if _, ok, err := parseRecorded(recordedPrefix + "{"); !ok || err == nil {
		t.Errorf("broken settings: ok %v, err %v", ok, err)
	}
	bad := Recorded{Flags: map[string]string{"port": "many"}}
	if _, _, err := applyRecorded(fs, map[string]bool{}, bad); err == nil || !strings.Contains(err.Error(), "--port") {
		t.Errorf("bad recorded port: %v", err)
	}
	outside := Recorded{Flags: map[string]string{"dump-books": "/tmp/x", "fix-connect": "192.0.2.1:1"}}
	if applied, _, err := applyRecorded(fs, map[string]bool{}, outside); err != nil || len(applied) != 0 || ro.Feed.DumpBooks != "" {
		t.Errorf("settings record does not keep were applied: %v %v", applied, err)
	}
	gone := Recorded{Flags: map[string]string{"templates": "/nonexistent/templates.xml"}}
	if applied, missing, err := applyRecorded(fs, map[string]bool{}, gone); err != nil || len(applied) != 0 || len(missing) != 1 {
		t.Errorf("a templates file gone: applied %v missing %v err %v", applied, missing, err)
	}
}

// FuzzParseRecorded: any section comment is read without a panic, and what parses
// applies or fails with an error.
func FuzzParseRecorded(f *testing.F) {
	f.Add(Recorded{Flags: map[string]string{"topics": "SBER", "port": "30001"}}.Comment())
	f.Add(recordedPrefix + `{"flags":{"single-group":"maybe"}}`)
	f.Add("fastfeed")
	f.Fuzz(func(t *testing.T, comment string) {
		r, ok, err := parseRecorded(comment)
		if !ok || err != nil {
			return
		}
		fs := flag.NewFlagSet("replay", flag.ContinueOnError)
		var ro ReplayOptions
		ro.Register(fs)
		delete(r.Flags, "templates")
		delete(r.Flags, "mcast-key")
		_, _, _ = applyRecorded(fs, map[string]bool{}, r)
	})
}
