package publisher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"

	"fastfeed/internal/fixsession"
	"fastfeed/md"
)

// Defaults of RecoveryOptions.
const (
	DefaultRecoveryMaxPending = 8
	DefaultRecoveryTimeout    = 10 * time.Second
	DefaultRecoveryServing    = 1
	DefaultRecoveryMinRate    = 32 << 10 // bytes per second
	DefaultRecoveryRateWindow = 10 * time.Second
	DefaultRecoveryInFlight   = 64 << 10 // bytes
	DefaultRecoverySendBuffer = 64 << 10 // bytes
)

// answerSlice is how many messages of an answer a session sends in one turn.
const answerSlice = 64

// RecoveryOptions tunes a RecoveryService; every zero field takes its
// default. The address, CompID and logins come from the publisher's
// Config.Recovery.
type RecoveryOptions struct {
	// Listen, if set, replaces Config.Recovery.Listen; port 0 picks a free
	// port (see RecoveryService.Addr).
	Listen string
	// MaxPending bounds the requests of one session queued or in service.
	MaxPending int
	// Timeout bounds the wait for the publishing loop to serve one request.
	Timeout time.Duration
	// Serving is how many sessions at once take a turn (default 1): fetch an
	// answer from the publishing loop or send a slice of 64 of its messages. The
	// others wait theirs, in the order they asked (round robin). Answers are sent
	// through quickfix at a cost of microseconds per message, on the publisher's
	// CPUs: a storm of requests answered in parallel would starve the multicast.
	Serving int
	// InFlight bounds the bytes of answers written by the service and not yet
	// taken by a client's socket, per session: a session with more waits, without
	// its turn, until its client reads.
	InFlight int
	// MinRate, in bytes per second, is the least a client must take of its
	// answers while it is behind (InFlight bytes waiting for it), measured over
	// RateWindow of such time; a slower client is sent a Logout giving the reason,
	// its connection closed, and counted (TooSlow).
	MinRate int
	// RateWindow is the time over which MinRate is measured.
	RateWindow time.Duration
	// SendBuffer is the kernel's send buffer (SO_SNDBUF) of each client
	// connection, in bytes; the kernel doubles it.
	SendBuffer int
	// HeartBtInt, if set, replaces the heartbeat interval clients ask for.
	HeartBtInt time.Duration
	// Limits bounds the FIX connections and what comes before a Logon (zero fields:
	// fixsession's defaults).
	Limits fixsession.Limits
	// TLS, if set, makes the service take FIX over TLS only (fixsession.ServerTLS);
	// nil: RecoveryConfig's TLS files, if any, else plain TCP.
	TLS *tls.Config
	// RequestLimits bounds the rate of each session's requests: over it, a
	// session-level Reject (3) with the reason, then a Logout (fixsession).
	RequestLimits fixsession.RequestLimits
	// MaxMessageSize bounds a message from a client after its Logon, framing
	// included; a longer one closes its connection (0: fixsession's default).
	MaxMessageSize int
	// Persistence keeps the sessions' sequence numbers across restarts (a file store)
	// and logs their messages to files.
	Persistence fixsession.Persistence
	// Logger receives logons, logouts and refusals (and quickfix's traffic at
	// Debug); nil means the publisher's logger.
	Logger *slog.Logger
}

// RecoveryStats counts what a RecoveryService did.
type RecoveryStats struct {
	Logons        uint64 // sessions logged on
	Requests      uint64 // MarketDataRequests received, malformed ones included
	Retransmitted uint64 // X, d and f messages sent in answer to retransmission requests
	Snapshots     uint64 // W messages sent
	Rejects       uint64 // MarketDataRequestRejects (Y) sent, for any reason
	Busy          uint64 // of Rejects: the session had MaxPending requests pending
	// Replaced counts the snapshot requests that replaced one of the same session for
	// the same snapshots still queued: served once, under the new MDReqID.
	Replaced uint64
	// Yields counts the turns that waited for the publisher to catch up with its
	// schedule (Publisher.Behind): recovery is served with what the multicast leaves.
	Yields          uint64
	BusinessRejects uint64 // BusinessMessageRejects (j): malformed V without MDReqID, other messages
	Aligned         uint64 // snapshots brought forward to their channel's common sequence number
	TooSlow         uint64 // sessions logged out for taking their answers slower than MinRate
	// FIX counts the connections and the malformed, garbled and rejected messages of the
	// service's FIX acceptor.
	FIX fixsession.AcceptorStats
	// Limits counts the requests over RecoveryOptions.RequestLimits and the sessions
	// logged out for them.
	Limits fixsession.LimitStats
}

// RecoveryService is the publisher's FIX recovery service (DESIGN.md, "Wire:
// FIX TCP"): a quickfix acceptor (FIXT.1.1, FIX.5.0SP2, CompID
// Config.Recovery.CompID) that logs on any client CompID with a login of
// Config.Recovery.Users and answers MarketDataRequest (V):
//
//   - Retransmission: ApplID (1180) = the channel, ApplBegSeqNum (1182) and
//     ApplEndSeqNum (1183). The answer is every sequenced message of the
//     range, in order, in its tag-value form (X, d or f) with ApplID,
//     ApplSeqNum (1181) = its channel sequence number, ApplResendFlag (1352) = Y
//     and the request's MDReqID (262). A SecurityDefinition (d) carries in
//     ApplID the channel of its instrument (md.DefinitionToFIX), so a client
//     matches answers by MDReqID. Heartbeats and resets have no sequence number
//     of their own and are never part of a range.
//   - Snapshot: SubscriptionRequestType (263) = 0 with symbols (NoRelatedSym
//     146 / Symbol 55), or ApplID alone for every instrument of a channel, or
//     both (the symbols, which must be on that channel). The answer is one
//     MarketDataSnapshotFullRefresh (W) per instrument, in request order, with
//     MDReqID, ApplID (the instrument's channel), LastMsgSeqNumProcessed (369),
//     RptSeq (83), every level, and TotNumReports (911) = the number of W
//     answering the request. All snapshots of one channel in an answer are
//     valid at the same LastMsgSeqNumProcessed.
//
// Refusals are a MarketDataRequestReject (Y) with MDReqID, Text (58) and
// MDReqRejReason (281):
//
//	0 (unknown symbol)           unknown channel or symbol
//	1 (duplicate MDReqID)        the MDReqID of a request still pending on the session
//	2 (insufficient bandwidth)   range larger than Config.MaxRetransmit; too many
//	                             requests pending; the publisher did not answer in time
//	4 (unsupported 263)          SubscriptionRequestType 1 or 2, or malformed 263
//	5 (unsupported MarketDepth)  a snapshot with MarketDepth other than 0 (full book)
//	A (unsupported scope)        range beyond the retention window, or invalid
//	                             (begin 0 or after end); neither ApplID nor symbols
//
// A V that does not parse gets a Y with the problem in Text when it has an
// MDReqID, and a BusinessMessageReject (j) otherwise; any other application
// message gets a BusinessMessageReject.
//
// Each session has a worker goroutine that serves its requests one at a time
// through the publisher's hooks (Retransmit, Snapshot), the only contact with
// the publishing loop, which serves them between send ticks: the multicast is
// never blocked by a client. A session holds at most
// RecoveryOptions.MaxPending requests queued or in service; a request beyond
// that is refused at once (281=2), so a client that asks faster than it is
// served gets rejects, not a growing queue.
//
// A snapshot request for the same snapshots (channel and symbols) as one of the
// same session still queued, not yet begun, replaces it in its place: the new one is
// answered then, and the one replaced gets no answer of its own
// (RecoveryStats.Replaced). A client that asks again after a timeout thus adds no
// work, and a session's queue is bounded by the channels, not by its retries.
//
// Sessions are served fairly: a worker takes a turn (RecoveryOptions.Serving
// at once, handed out in the order asked, so round robin) to fetch an answer
// or to send a slice of 64 of its messages, and between slices waits, without
// a turn, until less than RecoveryOptions.InFlight bytes of its answers wait
// for its client's socket (fixsession's Acceptor.WaitRoom). A slow client
// therefore delays nobody else, holds at most InFlight bytes (plus a slice and
// the kernel's buffers) of the service's memory, and costs no CPU while it
// does not read. A client that takes its answers slower than
// RecoveryOptions.MinRate, measured over RecoveryOptions.RateWindow of the
// time it is behind, is cut off: the answer's rest is dropped, a Logout whose
// Text gives the rate goes out, and the connection closes (TooSlow).
//
// Create it with NewRecoveryService, Start it once and Stop it when done; the
// publisher may run before, during or after it (requests before Publisher.Run
// are refused, requests after it are served from the final state).
type RecoveryService struct {
	p    *Publisher
	opts RecoveryOptions
	log  *slog.Logger
	acc  *fixsession.Acceptor

	mu       sync.Mutex
	state    int
	ctx      context.Context // of the workers, from Start
	cancel   context.CancelFunc
	sessions map[quickfix.SessionID]*recoverySession
	wg       sync.WaitGroup
	stopped  chan struct{}
	turns    *turns // RecoveryOptions.Serving turns, round robin

	logons, requests, retransmitted, snapshots, rejects, busy, businessRejects, aligned, tooSlow atomic.Uint64
	replaced, yields                                                                             atomic.Uint64
}

// recoverySession is one logged-on client.
type recoverySession struct {
	id     quickfix.SessionID
	ctx    context.Context
	cancel context.CancelFunc
	reqs   chan md.MarketDataRequest

	mu      sync.Mutex
	pending map[string]bool // MDReqIDs queued or in service
	// queued maps the scope of each snapshot request queued and not yet taken by the
	// worker (snapshotScope) to the last request for it: a new request for the same
	// scope replaces the one queued, and the worker serves the last in its place.
	queued map[string]md.MarketDataRequest

	// The worker's measure of how fast the client takes its answers while behind.
	behind time.Duration // time spent waiting for room, this window
	took   uint64        // bytes the client's socket took meanwhile
}

// NewRecoveryService returns the recovery service of p. It opens nothing
// until Start.
func NewRecoveryService(p *Publisher, opts RecoveryOptions) (*RecoveryService, error) {
	if p == nil {
		return nil, errors.New("publisher: recovery service: nil Publisher")
	}
	switch {
	case opts.MaxPending < 0:
		return nil, fmt.Errorf("publisher: recovery service: MaxPending %d is negative", opts.MaxPending)
	case opts.Timeout < 0:
		return nil, fmt.Errorf("publisher: recovery service: Timeout %v is negative", opts.Timeout)
	case opts.Serving < 0:
		return nil, fmt.Errorf("publisher: recovery service: Serving %d is negative", opts.Serving)
	case opts.InFlight < 0:
		return nil, fmt.Errorf("publisher: recovery service: InFlight %d is negative", opts.InFlight)
	case opts.MinRate < 0:
		return nil, fmt.Errorf("publisher: recovery service: MinRate %d is negative", opts.MinRate)
	case opts.RateWindow < 0:
		return nil, fmt.Errorf("publisher: recovery service: RateWindow %v is negative", opts.RateWindow)
	case opts.SendBuffer < 0:
		return nil, fmt.Errorf("publisher: recovery service: SendBuffer %d is negative", opts.SendBuffer)
	}
	if opts.InFlight == 0 {
		opts.InFlight = DefaultRecoveryInFlight
	}
	if opts.MinRate == 0 {
		opts.MinRate = DefaultRecoveryMinRate
	}
	if opts.RateWindow == 0 {
		opts.RateWindow = DefaultRecoveryRateWindow
	}
	if opts.SendBuffer == 0 {
		opts.SendBuffer = DefaultRecoverySendBuffer
	}
	if opts.Serving == 0 {
		opts.Serving = DefaultRecoveryServing
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = DefaultRecoveryMaxPending
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultRecoveryTimeout
	}
	if opts.Logger == nil {
		opts.Logger = p.log
	}
	rc := p.Recovery()
	if opts.Listen == "" {
		opts.Listen = rc.Listen
	}
	s := &RecoveryService{
		p:        p,
		opts:     opts,
		log:      opts.Logger,
		sessions: make(map[quickfix.SessionID]*recoverySession),
		stopped:  make(chan struct{}),
		turns:    newTurns(opts.Serving),
	}
	if opts.TLS == nil && (rc.TLSCert != "" || rc.TLSKey != "" || rc.TLSCA != "") {
		cfg, err := fixsession.ServerTLS(rc.TLSCert, rc.TLSKey, rc.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("publisher: recovery service: %w", err)
		}
		opts.TLS = cfg
	}
	if opts.Limits.MaxLogonFailures == 0 {
		opts.Limits.MaxLogonFailures = rc.MaxLogonFailures
	}
	if opts.Limits.Lockout == 0 {
		opts.Limits.Lockout = rc.Lockout
	}
	if clear := p.ClearTextUsers(); len(clear) > 0 && opts.Logger != nil {
		opts.Logger.Warn("recovery service: passwords stored in clear text; store hashes (fastfeed passwd)", "users", clear)
	}
	acc, err := fixsession.NewAcceptor(fixsession.AcceptorConfig{
		Listen:      opts.Listen,
		CompID:      rc.CompID,
		Credentials: p.Authenticate,
		HeartBtInt:  opts.HeartBtInt,
		SendBuffer:  opts.SendBuffer,
		Limits:      opts.Limits,
		TLS:         opts.TLS,
		Logger:      opts.Logger,

		RequestLimits:  opts.RequestLimits,
		Persistence:    opts.Persistence,
		MaxMessageSize: opts.MaxMessageSize,
	}, fixsession.HandlerFuncs{Logon: s.onLogon, Logout: s.onLogout, Message: s.onMessage})
	if err != nil {
		return nil, fmt.Errorf("publisher: recovery service: %w", err)
	}
	s.acc = acc
	return s, nil
}

// Lifecycle states of a RecoveryService.
const (
	svcNew = iota
	svcStarted
	svcStopped
)

// Start listens and serves until Stop is called or ctx is done.
func (s *RecoveryService) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.state != svcNew {
		s.mu.Unlock()
		return errors.New("publisher: recovery service: Start called twice or after Stop")
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.state = svcStarted
	s.mu.Unlock()
	if err := s.acc.Start(ctx); err != nil {
		s.Stop()
		return fmt.Errorf("publisher: recovery service: %w", err)
	}
	context.AfterFunc(ctx, s.Stop)
	return nil
}

// Addr returns the address the service listens on, host:port; empty before
// Start.
func (s *RecoveryService) Addr() string { return s.acc.Addr() }

// Stop logs out every session, closes the listener and waits until the
// sessions' workers have returned. It may be called more than once.
func (s *RecoveryService) Stop() {
	s.mu.Lock()
	switch s.state {
	case svcNew:
		s.state = svcStopped
		close(s.stopped)
		s.mu.Unlock()
		return
	case svcStopped:
		s.mu.Unlock()
		<-s.stopped
		return
	}
	s.state = svcStopped
	s.mu.Unlock()

	s.acc.Stop() // no Handler call after it returns
	s.cancel()
	s.wg.Wait()
	close(s.stopped)
}

// Stats returns the service's counters.
func (s *RecoveryService) Stats() RecoveryStats {
	return RecoveryStats{
		Logons:          s.logons.Load(),
		Requests:        s.requests.Load(),
		Retransmitted:   s.retransmitted.Load(),
		Snapshots:       s.snapshots.Load(),
		Rejects:         s.rejects.Load(),
		Busy:            s.busy.Load(),
		Replaced:        s.replaced.Load(),
		Yields:          s.yields.Load(),
		BusinessRejects: s.businessRejects.Load(),
		Aligned:         s.aligned.Load(),
		TooSlow:         s.tooSlow.Load(),
		FIX:             s.acc.Stats(),
		Limits:          s.acc.LimitStats(),
	}
}

func (s *RecoveryService) onLogon(id quickfix.SessionID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != svcStarted {
		return
	}
	if old := s.sessions[id]; old != nil {
		old.cancel()
	}
	ctx, cancel := context.WithCancel(s.ctx)
	sess := &recoverySession{id: id, ctx: ctx, cancel: cancel,
		reqs: make(chan md.MarketDataRequest, s.opts.MaxPending), pending: make(map[string]bool),
		queued: make(map[string]md.MarketDataRequest)}
	s.sessions[id] = sess
	s.logons.Add(1)
	s.wg.Add(1)
	go s.work(sess)
}

func (s *RecoveryService) onLogout(id quickfix.SessionID, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[id]; sess != nil {
		sess.cancel()
		delete(s.sessions, id)
	}
}

func (s *RecoveryService) session(id quickfix.SessionID) *recoverySession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// onMessage checks a request on the session's goroutine and queues it for
// the session's worker; whatever it refuses is answered at once.
func (s *RecoveryService) onMessage(id quickfix.SessionID, msg *quickfix.Message) error {
	if msg.IsMsgTypeOf(md.MsgTypeMarketDataRequest) {
		s.requests.Add(1)
	}
	sess := s.session(id)
	req, rej, err := parseRequest(msg, s.p.instrumentCount())
	switch {
	case err == nil && sess == nil:
		err = errors.New("recovery service: session not ready")
	case err != nil:
	case rej != nil:
		s.reject(sess, rej.MDReqID, rej.Reason, rej.Text)
		return nil
	}
	if err != nil {
		s.businessRejects.Add(1)
		return err
	}
	sess.mu.Lock()
	dup := sess.pending[req.MDReqID]
	busy, replaced := false, false
	scope, isSnap := snapshotScope(&req)
	if old, ok := sess.queued[scope]; isSnap && ok && !dup {
		// The same snapshots are asked for again (the client timed out and asked again)
		// while the first request still waits its turn: the new one replaces it, in its
		// place in the queue, so that a client that asks again adds no work.
		delete(sess.pending, old.MDReqID)
		sess.pending[req.MDReqID] = true
		sess.queued[scope] = req
		replaced = true
		s.replaced.Add(1)
		s.log.Debug("recovery request replaces one still queued", "session", sess.id.String(),
			"mdreqid", req.MDReqID, "replaced", old.MDReqID)
	}
	if !dup && !replaced {
		select {
		case sess.reqs <- req:
			sess.pending[req.MDReqID] = true
			if isSnap {
				sess.queued[scope] = req
			}
		default:
			busy = true
		}
	}
	sess.mu.Unlock()
	switch {
	case dup:
		s.reject(sess, req.MDReqID, md.RejectDuplicateMDReqID, "MDReqID "+req.MDReqID+" is still being served")
	case busy:
		s.busy.Add(1)
		s.reject(sess, req.MDReqID, md.RejectInsufficientBandwidth,
			fmt.Sprintf("too many requests pending (%d): wait for the answers before asking again", s.opts.MaxPending))
	}
	return nil
}

// parseRequest reads a recovery request. It returns the request to serve, or
// the reject that answers it, or an error for a message that cannot be
// answered with a reject (not a V, or a V without MDReqID): a
// BusinessMessageReject. instruments is how many instruments are published,
// the most symbols a request may name.
func parseRequest(msg *quickfix.Message, instruments int) (md.MarketDataRequest, *md.MarketDataReject, error) {
	t, _ := msg.Header.GetBytes(tag.MsgType)
	if string(t) != md.MsgTypeMarketDataRequest {
		return md.MarketDataRequest{}, nil, fmt.Errorf("recovery service: unsupported MsgType %q: send MarketDataRequest (V)", t)
	}
	req, err := md.MarketDataRequestFromFIX(msg)
	if err != nil {
		reqID, _ := msg.Body.GetString(tag.MDReqID)
		if reqID == "" {
			return md.MarketDataRequest{}, nil, fmt.Errorf("recovery service: malformed MarketDataRequest: %v", err)
		}
		var reason byte
		var fe *md.FIXError
		if errors.As(err, &fe) {
			switch fe.Tag {
			case tag.SubscriptionRequestType:
				reason = md.RejectUnsupportedSubscriptionRequestType
			case tag.MarketDepth:
				reason = md.RejectUnsupportedMarketDepth
			}
		}
		return md.MarketDataRequest{}, &md.MarketDataReject{MDReqID: reqID, Reason: reason, Text: "malformed MarketDataRequest: " + err.Error()}, nil
	}
	refuse := func(reason byte, text string) (md.MarketDataRequest, *md.MarketDataReject, error) {
		return md.MarketDataRequest{}, &md.MarketDataReject{MDReqID: req.MDReqID, Reason: reason, Text: text}, nil
	}
	retransmit := req.BegSeqNum != 0 || req.EndSeqNum != 0
	switch {
	case req.SubscriptionType != md.SubscriptionSnapshot && req.SubscriptionType != 0:
		return refuse(md.RejectUnsupportedSubscriptionRequestType,
			"the recovery service serves snapshots and retransmissions (SubscriptionRequestType 0) only")
	case retransmit && req.ApplID == "":
		return refuse(md.RejectUnsupportedScope, "a retransmission request needs the channel in ApplID (1180)")
	case retransmit:
		return req, nil, nil
	case req.MarketDepth != 0:
		return refuse(md.RejectUnsupportedMarketDepth, "snapshots are of the full book: MarketDepth must be 0")
	case req.ApplID == "" && len(req.Symbols) == 0:
		return refuse(md.RejectUnsupportedScope, "a snapshot request needs symbols (NoRelatedSym) or a channel (ApplID)")
	case len(req.Symbols) > instruments:
		return refuse(md.RejectUnsupportedScope,
			fmt.Sprintf("%d symbols requested, more than the %d instruments published", len(req.Symbols), instruments))
	}
	return req, nil, nil
}

// reject sends a MarketDataRequestReject.
func (s *RecoveryService) reject(sess *recoverySession, reqID string, reason byte, text string) {
	s.rejects.Add(1)
	s.log.Debug("recovery request refused", "session", sess.id.String(), "mdreqid", reqID, "reason", string(rune(reason)), "text", text)
	rej := md.MarketDataReject{MDReqID: reqID, Reason: reason, Text: text}
	_ = s.acc.Send(sess.id, rej.ToFIX()) // fails only once the session is gone
}

// snapshotScope returns the key of the snapshots req asks for, the channel and the
// symbols in any order, and whether req is a snapshot request.
func snapshotScope(req *md.MarketDataRequest) (string, bool) {
	if req.BegSeqNum != 0 || req.EndSeqNum != 0 {
		return "", false
	}
	syms := slices.Clone(req.Symbols)
	slices.Sort(syms)
	syms = slices.Compact(syms)
	return req.ApplID + "\x00" + strings.Join(syms, "\x00"), true
}
