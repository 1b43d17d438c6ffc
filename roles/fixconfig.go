package roles

// --fix-config (a quickfix settings file for the FIX roles) and the abuse limits of a
// FIX service's logged-on sessions.

import (
	"flag"
	"fmt"

	"fastfeed/bus"
	"fastfeed/feed/fixrecovery"
	"fastfeed/internal/fixsession"
	"fastfeed/publisher"
)

// Defaults of the abuse limits of fastfeed's FIX services (flags).
const (
	DefaultFIXRequestsPerSecond = 1000 // per logged-on session
	DefaultFIXMaxSubscriptions  = 1000 // per OMS client
)

// FIXFileOptions are --fix-config, read for the role's FIX sessions, and, for a role
// that serves FIX, the limits of each logged-on client.
type FIXFileOptions struct {
	File string
	// Limits of a FIX service's sessions (registerLimits).
	PerSecond, Burst, MaxRejects, MaxMessage, MaxSubscriptions int
	ReadPerSecond                                              int

	settings *fixsession.Settings
}

func (o *FIXFileOptions) registerFile(fs *flag.FlagSet) {
	fs.StringVar(&o.File, "fix-config", "", "quickfix settings `file` ([DEFAULT], [SESSION]) for this role's FIX sessions; flags given win")
}

// registerLimits adds the flags bounding a FIX service's logged-on clients;
// subscriptions adds --fix-max-subscriptions (the OMS service).
func (o *FIXFileOptions) registerLimits(fs *flag.FlagSet, service string, subscriptions bool) {
	fs.IntVar(&o.PerSecond, "fix-max-requests-per-second", DefaultFIXRequestsPerSecond,
		fmt.Sprintf("most application `messages` per second from one client of the %s (0: no limit); beyond, a session Reject (3) with the reason", service))
	fs.IntVar(&o.Burst, "fix-request-burst", 0, "most `messages` at once within --fix-max-requests-per-second (0: as many as the rate)")
	fs.IntVar(&o.ReadPerSecond, "fix-read-per-second", 0,
		fmt.Sprintf("read at most this many `messages` per second from one client of the %s, so that a flood meets TCP backpressure instead of costing the service CPU (0: %d x --fix-max-requests-per-second)", service, fixsession.DefaultReadFactor))
	fs.IntVar(&o.MaxRejects, "fix-max-limit-rejects", fixsession.DefaultMaxLimitRejects,
		"log a client out after this many `rejects` for going over a limit, each within a second of the one before")
	fs.IntVar(&o.MaxMessage, "fix-max-message-size", fixsession.DefaultMaxMessageSize,
		"most `bytes` of a client's message after its Logon; a longer one closes its connection")
	if subscriptions {
		fs.IntVar(&o.MaxSubscriptions, "fix-max-subscriptions", DefaultFIXMaxSubscriptions,
			"most subscriptions one OMS client holds at once (0: no limit); beyond, MarketDataRequestReject 281=2")
	}
}

// requestLimits returns the limits of the flags, checked.
func (o *FIXFileOptions) requestLimits() (fixsession.RequestLimits, error) {
	switch {
	case o.PerSecond < 0, o.Burst < 0, o.MaxSubscriptions < 0, o.ReadPerSecond < 0:
		return fixsession.RequestLimits{}, usagef("--fix-max-requests-per-second, --fix-request-burst, --fix-read-per-second and --fix-max-subscriptions must not be negative")
	case o.MaxRejects < 1:
		return fixsession.RequestLimits{}, usagef("--fix-max-limit-rejects %d: want at least 1", o.MaxRejects)
	case o.MaxMessage < 256:
		return fixsession.RequestLimits{}, usagef("--fix-max-message-size %d: want at least 256 bytes", o.MaxMessage)
	}
	return fixsession.RequestLimits{PerSecond: o.PerSecond, Burst: o.Burst, MaxRejects: o.MaxRejects, ReadPerSecond: o.ReadPerSecond}, nil
}

// load reads --fix-config, once; nil settings without it.
func (o *FIXFileOptions) load() (*fixsession.Settings, error) {
	if o.File == "" || o.settings != nil {
		return o.settings, nil
	}
	st, err := fixsession.ReadSettingsFile(o.File)
	if err != nil {
		return nil, &UsageError{"--fix-config: " + err.Error()}
	}
	o.settings = st
	return st, nil
}

// acceptorHeartBtInt is the heartbeat interval an acceptor's settings impose: HeartBtInt
// with HeartBtIntOverride=Y (as in quickfix), else 0 (the client's).
func acceptorHeartBtInt(s *fixsession.SessionSettings) int64 {
	if s.HeartBtIntOverride {
		return int64(s.HeartBtInt)
	}
	return 0
}

// applyPubFIX puts the recovery service's acceptor settings of --fix-config and the
// limit flags into cfg and ro, and its TLS keys into tls; flags given (set) win over the
// file.
func (o *FIXFileOptions) applyPubFIX(set map[string]bool, cfg *publisher.Config, ro *publisher.RecoveryOptions, tls *FIXServerTLS) error {
	lim, err := o.requestLimits()
	if err != nil {
		return err
	}
	ro.RequestLimits, ro.MaxMessageSize = lim, o.MaxMessage
	st, err := o.load()
	if err != nil {
		return err
	}
	compID := cfg.Recovery.CompID
	if compID == "" {
		compID = fixsession.RecoveryCompID
	}
	s := st.Acceptor(compID)
	if s == nil {
		if st != nil {
			return usagef("--fix-config %s: no acceptor [SESSION] for the recovery service", st.File)
		}
		return nil
	}
	tls.fromSettings(s, set)
	if l := s.Listen(); l != "" && !set["fix-listen"] {
		cfg.Recovery.Listen = l
	}
	if s.SenderCompID != "" {
		cfg.Recovery.CompID = s.SenderCompID
	}
	if hb := acceptorHeartBtInt(s); hb > 0 {
		ro.HeartBtInt = s.HeartBtInt
	}
	ro.Persistence = s.Persistence
	return nil
}

// applyRecoveryFIX puts the recovery client's initiator settings of --fix-config into
// o.s flags not given (set), and returns the rest of it for the client.
func (o *FeedOptions) applyRecoveryFIX(set map[string]bool) (rc fixrecovery.Config, err error) {
	st, err := o.FIXFile.load()
	if err != nil || st == nil {
		return rc, err
	}
	s := st.Initiator(fixsession.RecoveryCompID)
	if s == nil {
		return rc, nil
	}
	o.RecoveryTLS.fromSettings(s, set)
	if c := s.Connect(); c != "" && !set["fix-connect"] {
		o.FixConnect = c
	}
	if s.SenderCompID != "" && !set["comp-id"] {
		o.CompID = s.SenderCompID
	}
	if s.TargetCompID != "" {
		rc.TargetCompID = s.TargetCompID
	}
	rc.HeartBtInt, rc.ReconnectInterval, rc.Persistence = s.HeartBtInt, s.ReconnectInterval, s.Persistence
	return rc, nil
}

// applyOMSServiceFIX puts the OMS service's acceptor settings of --fix-config (which
// start the service when --serve-fix is not given), with its TLS keys, and the limit
// flags into bc.
func (o *FeedOptions) applyOMSServiceFIX(set map[string]bool, bc *bus.Config) error {
	return o.FIXFile.applyOMSService(set, "serve-fix", bc, &o.FIXLimits.TLS)
}

// applyOMSService puts the OMS service's acceptor settings of --fix-config and the limit
// flags into bc, and its TLS keys into tls (feed --serve-fix and gateway); flags given
// (set; listen names the flag of the address) win over the file.
func (o *FIXFileOptions) applyOMSService(set map[string]bool, listen string, bc *bus.Config, tls *FIXServerTLS) error {
	lim, err := o.requestLimits()
	if err != nil {
		return err
	}
	bc.RequestLimits, bc.MaxMessageSize, bc.MaxSubscriptions = lim, o.MaxMessage, o.MaxSubscriptions
	st, err := o.load()
	if err != nil || st == nil {
		return err
	}
	s := st.Acceptor(fixsession.OMSCompID)
	if s == nil {
		return nil
	}
	tls.fromSettings(s, set)
	if l := s.Listen(); l != "" && !set[listen] {
		bc.Listen = l
	}
	if s.SenderCompID != "" {
		bc.CompID = s.SenderCompID
	}
	if acceptorHeartBtInt(s) > 0 {
		bc.HeartBtInt = s.HeartBtInt
	}
	bc.Persistence = s.Persistence
	return nil
}

// omsServiceListen returns the OMS service's address in --fix-config, "" if none.
func (o *FeedOptions) omsServiceListen() (string, error) {
	st, err := o.FIXFile.load()
	if err != nil || st == nil {
		return "", err
	}
	return st.Acceptor(fixsession.OMSCompID).Listen(), nil
}

// applyOMSClientFIX puts the OMS client's initiator settings of --fix-config into o's
// flags not given (set) and cc.
func (o *OMSOptions) applyOMSClientFIX(set map[string]bool, cc *bus.ClientConfig) error {
	st, err := o.FIXFile.load()
	if err != nil || st == nil {
		return err
	}
	s := st.Initiator(fixsession.OMSCompID)
	if s == nil {
		return usagef("--fix-config %s: no initiator [SESSION] for the OMS service", st.File)
	}
	o.TLS.fromSettings(s, set)
	if c := s.Connect(); c != "" && !set["connect"] {
		o.Connect = c
	}
	if s.SenderCompID != "" && !set["comp-id"] {
		o.CompID = s.SenderCompID
	}
	if s.TargetCompID != "" {
		cc.TargetCompID = s.TargetCompID
	}
	cc.HeartBtInt, cc.ReconnectInterval, cc.Persistence = s.HeartBtInt, s.ReconnectInterval, s.Persistence
	return nil
}
