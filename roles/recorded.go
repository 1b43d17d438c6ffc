package roles

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"fastfeed/fixtures"
	"fastfeed/mcast/dgauth"
)

// recordedPrefix starts the pcapng section comment in which fastfeed record keeps what
// it was asked for, for fastfeed replay to take as its defaults.
const recordedPrefix = "fastfeed record "

// Recorded is what fastfeed record was asked for, kept in the capture's pcapng section
// comment as recordedPrefix followed by this object in JSON: the flags replay shares with
// record (by their names, as a --config file has them), the digest of the templates and
// the id of the --mcast-key the capture was recorded with.
type Recorded struct {
	Flags           map[string]string `json:"flags"`
	TemplatesSHA256 string            `json:"templates_sha256,omitempty"`
	McastKeyID      *int              `json:"mcast_key_id,omitempty"`
}

// recordedFlags are the flags of record that replay takes with the same meaning.
var recordedFlags = []string{"topics", "group-base", "group-size", "single-group", "port", "definitions-group"}

// recorded returns what record o was asked for (set: the flags given).
func (o *RecordOptions) recorded(set map[string]bool, key *dgauth.Key) Recorded {
	r := Recorded{Flags: map[string]string{}}
	vals := map[string]string{"topics": o.Topics, "group-base": o.GroupBase, "group-size": fmt.Sprint(o.GroupSize),
		"single-group": fmt.Sprint(o.SingleGroup), "port": fmt.Sprint(o.Port), "definitions-group": o.DefsGroup}
	for _, name := range recordedFlags {
		// The port and the definitions channel always: they are where the data was.
		if v := vals[name]; v != "" && (set[name] || name == "port" || name == "definitions-group") {
			r.Flags[name] = v
		}
	}
	explicit := set["templates"] || o.Templates != DefaultTemplates
	if explicit {
		if abs, err := filepath.Abs(o.Templates); err == nil {
			r.Flags["templates"] = abs
		}
	}
	r.TemplatesSHA256 = templatesDigest(o.Templates, explicit)
	if key != nil {
		if abs, err := filepath.Abs(o.McastKeyFile); err == nil {
			r.Flags["mcast-key"] = abs
		}
		id := int(key.ID())
		r.McastKeyID = &id
	}
	return r
}

// Comment returns r as a pcapng section comment.
func (r Recorded) Comment() string {
	b, _ := json.Marshal(r) // strings and ints: cannot fail
	return recordedPrefix + string(b)
}

// parseRecorded reads a capture's section comment: ok is false when it is not one
// fastfeed record wrote.
func parseRecorded(comment string) (r Recorded, ok bool, err error) {
	rest, found := strings.CutPrefix(comment, recordedPrefix)
	if !found {
		return r, false, nil
	}
	if err := json.Unmarshal([]byte(rest), &r); err != nil {
		return r, true, fmt.Errorf("the settings fastfeed record kept in the capture: %w", err)
	}
	return r, true, nil
}

// applyRecorded sets fs's flags that the command line (or --config) did not give from
// the capture's recorded settings, and marks them given in set. A templates or key file
// that is not there any more is not taken (replay falls back to its defaults and says
// so). It returns the names it set, sorted, and the files it could not take.
func applyRecorded(fs *flag.FlagSet, set map[string]bool, r Recorded) (applied, missing []string, err error) {
	for name, v := range r.Flags {
		// Only the settings record keeps: a capture from elsewhere must not name
		// files to write (--dump-books) or a server to connect to.
		if !slices.Contains(recordedFlags, name) && name != "templates" && name != "mcast-key" {
			continue
		}
		if set[name] || fs.Lookup(name) == nil {
			continue
		}
		if name == "templates" || name == "mcast-key" {
			if _, serr := os.Stat(v); serr != nil {
				missing = append(missing, "--"+name+" "+v)
				continue
			}
		}
		if err := fs.Set(name, v); err != nil {
			return nil, nil, fmt.Errorf("the capture's recorded --%s %q: %w", name, v, err)
		}
		set[name] = true
		applied = append(applied, name)
	}
	sort.Strings(applied)
	sort.Strings(missing)
	return applied, missing, nil
}

// checkRecorded warns when replay's templates or key differ from those the capture was
// recorded with.
func checkRecorded(log *slog.Logger, r Recorded, templates string, explicit bool, key *dgauth.Key) {
	if r.TemplatesSHA256 != "" {
		if got := templatesDigest(templates, explicit); got != r.TemplatesSHA256 {
			log.Warn("the capture was recorded with other FAST templates: give --templates FILE if decoding fails",
				"recorded_sha256", r.TemplatesSHA256, "replay_sha256", got, "templates", templates)
		}
	}
	switch {
	case r.McastKeyID != nil && key == nil:
		log.Warn("the capture was recorded with --mcast-key: give --mcast-key FILE to check its datagrams' trailers", "key_id", *r.McastKeyID)
	case r.McastKeyID != nil && int(key.ID()) != *r.McastKeyID:
		log.Warn("the capture was recorded with another --mcast-key", "recorded_key_id", *r.McastKeyID, "key_id", key.ID())
	}
}

// templatesDigest returns the SHA-256 of the templates LoadTemplates(path, explicit)
// loads: the file found, else the copy compiled in; "" if there is none.
func templatesDigest(path string, explicit bool) string {
	var data []byte
	found, err := findFixture(path, explicit, "FAST templates", "--templates")
	if err == nil {
		data, err = os.ReadFile(found)
	}
	if err != nil {
		if explicit || path != DefaultTemplates {
			return ""
		}
		data = fixtures.TemplatesXML()
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
