// Package fixsession builds the quickfix acceptors and initiators of fastfeed's FIX sessions
// (the publisher's recovery service, the handler's recovery client, the OMS distribution
// service) from Go values, with no configuration files: FIXT.1.1 transport with
// DefaultApplVerID 9 (FIX.5.0SP2), in-memory message stores, and logs that go nowhere
// unless a *slog.Logger is given.
//
// An Acceptor accepts any client CompID (dynamic sessions) whose Logon (A) names the
// acceptor's CompID as TargetCompID and carries a Username (553) and Password (554) its
// Credentials function accepts; any other Logon is answered with a Logout (5) whose Text
// (58) gives the reason. An Initiator connects, adds Username and Password to its Logon,
// and reconnects after a lost or refused session until stopped.
//
// Session sequence numbers restart at 1 with every logon (ResetOnLogon, ResetOnLogout,
// ResetOnDisconnect) and sent messages are not kept for session-level resends
// (PersistMessages=N, so a ResendRequest is answered with a gap fill): recovery in
// fastfeed is at the application level, by ApplSeqNum (1181).
//
// A Handler sees logons, logouts and application messages. Its methods are called from
// the sessions' goroutines, one session's calls in order; they may call Send.
//
// Known behaviour of quickfix v0.9.7 that shows through: a session starts on the next
// whole second, so a logon takes up to about two seconds and a Stop right after Start up
// to one; after a session ends, up to two of its timer goroutines (logon and logout
// timeouts) and, when a message crossed the Logout, its connection reader stay blocked
// for the life of the process. quickfix trusts the lengths in what it reads (a message
// whose XmlDataLen (212) overruns it panics on the session's goroutine) and bounds no
// message's size, so an Acceptor's clients reach it only through a guard that frames and
// checks every message first (CheckFrame, FrameReader): a malformed message is counted
// (AcceptorStats), logged at Warn, and closes its connection. The guard reads a
// connection's Logon within Limits (size, deadline, garbled messages) before quickfix sees
// the connection, refuses a Logon that repeats a tag, and caps connections; Identity says
// who a logged-on session authenticated as.
package fixsession

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/quickfix/config"
	"github.com/quickfixgo/tag"

	"fastfeed/internal/ratelog"
)

// Defaults of fastfeed's FIX services (docs: DESIGN.md, "Wire: FIX TCP").
const (
	RecoveryListen = "127.0.0.1:9870" // the publisher's recovery service
	RecoveryCompID = "FFPUB"
	OMSListen      = "127.0.0.1:9871" // the handler's OMS distribution service
	OMSCompID      = "FFFEED"
	DemoUsername   = "demo"
	DemoPassword   = "demo"

	BeginString      = quickfix.BeginStringFIXT11 // "FIXT.1.1"
	DefaultApplVerID = quickfix.ApplVerIDFIX50SP2 // "9"
)

// ErrNotLoggedOn is returned when sending to a session that is not logged on.
var ErrNotLoggedOn = errors.New("session not logged on")

// Handler receives the events of FIX sessions.
type Handler interface {
	// OnLogon is called when session id has logged on.
	OnLogon(id quickfix.SessionID)
	// OnLogout is called when a logged-on session ends, or an initiator's logon fails.
	// reason is the Text (58) of the Logout received from the counterparty, empty if it
	// sent none or the connection was lost.
	OnLogout(id quickfix.SessionID, reason string)
	// OnMessage is called for each application message received. A non-nil error
	// rejects the message: a quickfix.MessageRejectError as is, any other error as a
	// BusinessMessageReject (j) with its text.
	OnMessage(id quickfix.SessionID, msg *quickfix.Message) error
}

// HandlerFuncs is a Handler made of functions; a nil function ignores its event.
type HandlerFuncs struct {
	Logon   func(id quickfix.SessionID)
	Logout  func(id quickfix.SessionID, reason string)
	Message func(id quickfix.SessionID, msg *quickfix.Message) error
}

// OnLogon calls h.Logon.
func (h HandlerFuncs) OnLogon(id quickfix.SessionID) {
	if h.Logon != nil {
		h.Logon(id)
	}
}

// OnLogout calls h.Logout.
func (h HandlerFuncs) OnLogout(id quickfix.SessionID, reason string) {
	if h.Logout != nil {
		h.Logout(id, reason)
	}
}

// OnMessage calls h.Message.
func (h HandlerFuncs) OnMessage(id quickfix.SessionID, msg *quickfix.Message) error {
	if h.Message != nil {
		return h.Message(id, msg)
	}
	return nil
}

// StaticCredentials returns a Credentials function accepting exactly username and
// password, compared in constant time.
func StaticCredentials(username, password string) func(username, password string) bool {
	u, p := []byte(username), []byte(password)
	return func(username, password string) bool {
		okU := subtle.ConstantTimeCompare(u, []byte(username))
		okP := subtle.ConstantTimeCompare(p, []byte(password))
		return okU&okP == 1
	}
}

// Logout reasons sent by an Acceptor.
const (
	reasonNoCredentials  = "Username (553) and Password (554) required"
	reasonBadCredentials = "unknown username or password"
)

// app is the quickfix.Application of an Acceptor or Initiator.
type app struct {
	h      Handler
	logger *slog.Logger

	// Acceptor: the CompID clients must address and the credentials check.
	acceptor    bool
	compID      string
	credentials func(username, password string) bool
	// Initiator: what its Logon carries.
	username, password string

	stats counters        // an Acceptor's
	rl    *ratelog.Logger // warnings about clients, rate-limited

	identities map[quickfix.SessionID]Identity // an Acceptor's sessions that passed Credentials
	limiter    *limiter                        // an Acceptor's RequestLimits, nil if none

	mu       sync.Mutex
	loggedOn map[quickfix.SessionID]bool
	reasons  map[quickfix.SessionID]string // Text of the last Logout received
	flow     map[quickfix.SessionID]*flow
	resend   map[quickfix.SessionID]bool // a ResendRequest sent, its answer not yet complete (store.go)
	// An Initiator's last failure to connect ("dial tcp ...: connection refused") and
	// how many attempts in a row failed; a logon clears them.
	connectErr      string
	connectFailures int
}

// connectFailed notes an Initiator's failed connection attempt.
func (a *app) connectFailed(msg string) {
	a.mu.Lock()
	a.connectErr = msg
	a.connectFailures++
	a.mu.Unlock()
}

// lastConnectError returns the last failure to connect and the failures in a row.
func (a *app) lastConnectError() (string, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.connectErr, a.connectFailures
}

// flow counts a session's application messages given to quickfix and handed by it to
// the connection's writer, for Flush.
type flow struct {
	sent, handed atomic.Uint64
	more         chan struct{} // a token after each hand-off
}

// flowOf returns session id's counters, made on first use.
func (a *app) flowOf(id quickfix.SessionID) *flow {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.flow[id]
	if f == nil {
		f = &flow{more: make(chan struct{}, 1)}
		a.flow[id] = f
	}
	return f
}

// flush waits until session id has handed every application message sent so far to its
// connection writer, or ctx ends.
func (a *app) flush(ctx context.Context, id quickfix.SessionID) error {
	f := a.flowOf(id)
	for f.handed.Load() < f.sent.Load() {
		if !a.isLoggedOn(id) {
			return fmt.Errorf("fixsession: flush %v: %w", id, ErrNotLoggedOn)
		}
		select {
		case <-f.more:
		case <-ctx.Done():
			return fmt.Errorf("fixsession: flush %v: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond): // the session may have ended meanwhile
		}
	}
	return nil
}

func newApp(h Handler, logger *slog.Logger, linesPerSecond int) *app {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &app{
		h:          h,
		logger:     logger,
		rl:         ratelog.New(logger, linesPerSecond),
		identities: make(map[quickfix.SessionID]Identity),
		loggedOn:   make(map[quickfix.SessionID]bool),
		flow:       make(map[quickfix.SessionID]*flow),
		reasons:    make(map[quickfix.SessionID]string),
		resend:     make(map[quickfix.SessionID]bool),
	}
}

func (a *app) isLoggedOn(id quickfix.SessionID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.loggedOn[id]
}

func (a *app) sessions() []quickfix.SessionID {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]quickfix.SessionID, 0, len(a.loggedOn))
	for id := range a.loggedOn {
		ids = append(ids, id)
	}
	return ids
}

func (a *app) OnCreate(quickfix.SessionID) {}

func (a *app) OnLogon(id quickfix.SessionID) {
	f := a.flowOf(id)
	f.handed.Store(f.sent.Load()) // what an earlier session left queued was dropped with it
	a.mu.Lock()
	a.loggedOn[id] = true
	delete(a.reasons, id)
	a.connectErr, a.connectFailures = "", 0
	delete(a.resend, id)
	a.mu.Unlock()
	a.logger.Info("fix logon", "session", id.String())
	a.h.OnLogon(id)
}

func (a *app) OnLogout(id quickfix.SessionID) {
	a.mu.Lock()
	delete(a.loggedOn, id)
	reason := a.reasons[id]
	delete(a.reasons, id)
	a.mu.Unlock()
	a.logger.Info("fix logout", "session", id.String(), "reason", reason)
	a.h.OnLogout(id, reason)
	a.mu.Lock()
	delete(a.identities, id)
	a.mu.Unlock()
	if a.limiter != nil {
		a.limiter.forget(id)
	}
}

// logout sends session id a Logout (5) with reason as its Text (58).
func (a *app) logout(id quickfix.SessionID, reason string) {
	msg := quickfix.NewMessage()
	msg.Header.SetString(tag.MsgType, "5")
	msg.Body.SetString(tag.Text, reason)
	_ = a.send(id, msg) // the session may have ended meanwhile
}

// Identity is who a session authenticated as.
type Identity struct {
	// Username is the Username (553) of the Logon whose credentials were accepted. The
	// guard refuses a Logon that repeats a tag, so this is the only Username it had.
	Username string
}

func (a *app) identity(id quickfix.SessionID) (Identity, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.identities[id]
	return v, ok
}

// ToAdmin adds the credentials to an initiator's Logon.
func (a *app) ToAdmin(msg *quickfix.Message, _ quickfix.SessionID) {
	if !a.acceptor && msg.IsMsgTypeOf("A") {
		if a.username != "" {
			msg.Body.SetString(tag.Username, a.username)
		}
		if a.password != "" {
			msg.Body.SetString(tag.Password, a.password)
		}
	}
}

func (a *app) ToApp(*quickfix.Message, quickfix.SessionID) error { return nil }

// FromAdmin checks an acceptor's incoming Logon.
func (a *app) FromAdmin(msg *quickfix.Message, id quickfix.SessionID) quickfix.MessageRejectError {
	if !a.acceptor || !msg.IsMsgTypeOf("A") {
		return nil
	}
	var reason string
	user, errU := msg.Body.GetString(tag.Username)
	pass, errP := msg.Body.GetString(tag.Password)
	switch {
	case id.BeginString != BeginString:
		reason = "BeginString must be " + BeginString
	case id.SenderCompID != a.compID:
		reason = fmt.Sprintf("unknown TargetCompID %q", id.SenderCompID)
	case errU != nil || errP != nil:
		reason = reasonNoCredentials
	case !a.credentials(user, pass):
		reason = reasonBadCredentials
	default:
		a.mu.Lock()
		a.identities[id] = Identity{Username: user}
		a.mu.Unlock()
		return nil
	}
	a.mu.Lock()
	delete(a.identities, id)
	a.mu.Unlock()
	a.stats.logonsRefused.Add(1)
	a.rl.Info("logon refused", "fix logon refused", "session", id.String(), "username", user, "reason", reason)
	return quickfix.RejectLogon{Text: reason}
}

func (a *app) FromApp(msg *quickfix.Message, id quickfix.SessionID) quickfix.MessageRejectError {
	if a.limiter != nil {
		if rej, logout := a.limiter.admit(id); rej != nil {
			a.rl.Warn("rate limit", "fix request over the rate limit", "session", id.String(), "logout", logout)
			if logout {
				go a.logout(id, reasonRateLogout)
			}
			return rej
		}
	}
	err := a.h.OnMessage(id, msg)
	if err == nil {
		return nil
	}
	var rej quickfix.MessageRejectError
	if errors.As(err, &rej) {
		return rej
	}
	const other = 0 // BusinessRejectReason (380) 0: Other
	return quickfix.NewBusinessMessageRejectError(err.Error(), other, nil)
}

// setReason records the Text of a Logout received on session id. The session log sees
// every incoming message, including the Logout refusing an initiator's Logon, which
// quickfix does not pass to FromAdmin.
func (a *app) setReason(id quickfix.SessionID, text string) {
	a.mu.Lock()
	a.reasons[id] = text
	a.mu.Unlock()
}

// send sends msg on session id if it is logged on.
func (a *app) send(id quickfix.SessionID, msg *quickfix.Message) error {
	if !a.isLoggedOn(id) {
		return fmt.Errorf("fixsession: send to %v: %w", id, ErrNotLoggedOn)
	}
	f := a.flowOf(id)
	t, _ := msg.Header.GetBytes(tag.MsgType)
	if err := quickfix.SendToTarget(msg, id); err != nil {
		return fmt.Errorf("fixsession: send to %v: %w", id, err)
	}
	if len(t) != 1 || !isAdminType(t[0]) { // as OnOutgoing counts them
		f.sent.Add(1)
	}
	return nil
}

// setBase sets on s the settings every fastfeed session shares.
func setBase(s *quickfix.SessionSettings) {
	s.Set(config.BeginString, BeginString)
	s.Set(config.DefaultApplVerID, DefaultApplVerID)
	s.Set(config.ResetOnLogon, "Y")
	s.Set(config.ResetOnLogout, "Y")
	s.Set(config.ResetOnDisconnect, "Y")
	s.Set(config.PersistMessages, "N")
}

// splitHostPort splits addr, "host:port", with a numeric port.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: bad port %q", addr, p)
	}
	return host, int(port), nil
}

// lifecycle states of an Acceptor or Initiator.
const (
	stateNew = iota
	stateStarted
	stateStopped
)

// lifecycle is the Start/Stop state an Acceptor and an Initiator share. mu also guards
// the fields of the embedding type that Start sets.
type lifecycle struct {
	mu      sync.Mutex
	state   int
	stopCtx func() bool   // ends the context watch
	stopped chan struct{} // closed when Stop is done
}

func newLifecycle() lifecycle { return lifecycle{stopped: make(chan struct{})} }

// beginStop marks the lifecycle stopped and ends its context watch. It reports whether
// the caller has a started session to shut down, after which it must call endStop; when
// it reports false, any Stop already under way has finished.
func (l *lifecycle) beginStop() bool {
	l.mu.Lock()
	switch l.state {
	case stateNew:
		l.state = stateStopped
		close(l.stopped)
		l.mu.Unlock()
		return false
	case stateStopped:
		l.mu.Unlock()
		<-l.stopped
		return false
	}
	l.state = stateStopped
	stopCtx := l.stopCtx
	l.mu.Unlock()
	stopCtx()
	return true
}

// endStop reports the shutdown done.
func (l *lifecycle) endStop() { close(l.stopped) }

// seconds rounds d up to whole seconds, at least one: quickfix takes HeartBtInt in seconds.
func seconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// storeFactory makes quickfix's in-memory stores, and tells when each session's goroutine
// has started, for a workaround: quickfix v0.9.7's session.run resets the session's
// stop-once guard (a sync.Once) as its first statement, so stopping a session whose
// goroutine has not reached it yet corrupts the guard's mutex and kills the process
// ("fatal error: sync: unlock of unlocked mutex"). run's next step reads the store's
// CreationTime, which is the signal; Start and Stop wait for it before going on.
type storeFactory struct {
	mu      sync.Mutex
	inner   quickfix.MessageStoreFactory // nil: memory
	pending map[*signalStore]time.Time   // created, not yet seen running; creation time
}

func newStoreFactory() *storeFactory {
	return &storeFactory{pending: make(map[*signalStore]time.Time)}
}

type signalStore struct {
	quickfix.MessageStore
	f       *storeFactory
	once    sync.Once
	running chan struct{}
}

// setInner makes the stores with inner from now on; nil means in memory.
func (f *storeFactory) setInner(inner quickfix.MessageStoreFactory) {
	f.mu.Lock()
	f.inner = inner
	f.mu.Unlock()
}

func (f *storeFactory) Create(id quickfix.SessionID) (quickfix.MessageStore, error) {
	f.mu.Lock()
	inner := f.inner
	f.mu.Unlock()
	if inner == nil {
		inner = quickfix.NewMemoryStoreFactory()
	}
	ms, err := inner.Create(id)
	if err != nil {
		return nil, err
	}
	s := &signalStore{MessageStore: ms, f: f, running: make(chan struct{})}
	f.mu.Lock()
	f.pending[s] = time.Now()
	f.mu.Unlock()
	return s, nil
}

func (s *signalStore) CreationTime() time.Time {
	s.once.Do(func() {
		s.f.mu.Lock()
		delete(s.f.pending, s)
		s.f.mu.Unlock()
		close(s.running)
	})
	return s.MessageStore.CreationTime()
}

// sessionStartLimit bounds the wait for a session's goroutine: a store whose session
// quickfix discarded (a duplicate dynamic session) never signals.
const sessionStartLimit = time.Second

// waitRunning waits until the goroutine of every session created so far has started.
func (f *storeFactory) waitRunning() {
	f.mu.Lock()
	pending := make(map[*signalStore]time.Time, len(f.pending))
	for s, t := range f.pending {
		pending[s] = t
	}
	f.mu.Unlock()
	for s, created := range pending {
		timer := time.NewTimer(time.Until(created.Add(sessionStartLimit)))
		select {
		case <-s.running:
		case <-timer.C:
			f.mu.Lock()
			delete(f.pending, s)
			f.mu.Unlock()
		}
		timer.Stop()
	}
}

// forget drops the stores of sessions that will never run, after a failed start.
func (f *storeFactory) forget() {
	f.mu.Lock()
	clear(f.pending)
	f.mu.Unlock()
}
