package roles

import (
	"flag"
	"log/slog"

	"fastfeed/feed"
	"fastfeed/mcast/dgauth"
)

// McastKey is --mcast-key FILE, the shared key of the datagrams' trailers (pub, feed,
// replay, record; docs/mcast-auth.md).
type McastKey struct {
	McastKeyFile string
}

func (k *McastKey) register(fs *flag.FlagSet, what string) {
	fs.StringVar(&k.McastKeyFile, "mcast-key", "", what+" with the shared key in `FILE` (64+ hex digits or 32+ raw bytes; docs/mcast-auth.md); without it the network is trusted")
}

// LoadKey reads the key file; no file, no key.
func (k *McastKey) LoadKey() (*dgauth.Key, error) {
	if k.McastKeyFile == "" {
		return nil, nil
	}
	return dgauth.LoadKey(k.McastKeyFile)
}

// warnForged logs the datagrams refused by --mcast-key and the copies of one sequence
// number that differed, when there were any.
func warnForged(log *slog.Logger, st feed.Stats) {
	if st.AuthFailures > 0 || st.ABMismatch > 0 {
		log.Warn("datagrams not from the publisher", "auth_failures", st.AuthFailures, "ab_mismatch", st.ABMismatch)
	}
}
