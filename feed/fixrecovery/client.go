// Package fixrecovery is the handler's FIX recovery client: a feed.Recovery that asks the
// publisher's recovery service (publisher.RecoveryService; DESIGN.md, "Wire: FIX TCP") for
// what multicast lost, over a quickfix initiator session (FIXT.1.1, FIX.5.0SP2).
//
// Retransmit sends a MarketDataRequest (V) with ApplID (1180) = the channel,
// ApplBegSeqNum (1182) and ApplEndSeqNum (1183). Each answer (X, d or f with the request's
// MDReqID) is converted to the model (md.*FromFIX) and delivered as
// Sink.Retransmitted(channel, ApplSeqNum, message): the engine applies the model value
// as it is, with no FAST encoding on the way (the message the datagram carried, decoded).
//
// Snapshot sends a V with SubscriptionRequestType (263) = 0, ApplID = the channel and the
// symbols (NoRelatedSym), or ApplID alone for a whole channel. It collects the W answers
// until every symbol asked for has come (or, for a whole channel, as many as their
// TotNumReports (911) announces), and delivers them in one Sink.Snapshots call, in the
// order asked for. publisher.RecoveryService answers with snapshots of one channel all
// valid at one LastMsgSeqNumProcessed (369); the client passes on what it gets, and the
// handler copes with snapshots valid at different numbers.
//
// A MarketDataRequestReject (Y) fails its request with Sink.Failed and the reject's Text.
// So does silence: a request that has gone Config.Timeout without an answer message (the
// time runs from the request, and again from each answer), a session lost while answers
// are outstanding (after the request was sent again once, at the next logon, for what
// was still missing), a logon the service refuses (with the Text of its Logout), and a full
// queue. Requests made while the session is not logged on
// wait, up to Config.MaxQueued of them, and are sent at the next logon; the initiator
// reconnects by itself.
//
// Snapshot requests are not multiplied by a handler that asks again (its backoff,
// gap.Config.MaxBackoff): a Snapshot for a channel whose request for the same symbols is
// still unanswered joins it, and the two get one outcome. While the request is in time
// (or waits for the logon) nothing more is sent; once it has timed out (and failed), it
// is sent again under a new MDReqID, keeping what came already, and answers to every
// MDReqID it was sent under: the service replaces a duplicate still queued, and an
// answer that comes late is used, not discarded (Stats.LateAnswers). So a snapshot
// request that failed for silence may still be followed by its Snapshots.
//
// Retransmit and Snapshot never block: they hand the request to the client's goroutine,
// which owns every request and makes every Sink call. Each request gets exactly one
// outcome: for a retransmission, its messages (all of them, or some and then a Failed),
// for a snapshot request one Snapshots or one Failed (or, timed out, a Failed and then
// its late Snapshots).
package fixrecovery

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"

	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/md"
)

// Defaults of Config.
const (
	DefaultSenderCompID = "FFFEED-1"
	DefaultTimeout      = 5 * time.Second
	DefaultMaxQueued    = 256
)

// Config configures a Client. Every zero field takes its default.
type Config struct {
	Connect            string // the recovery service, host:port; default fixsession.RecoveryListen
	SenderCompID       string // this client's CompID; default DefaultSenderCompID
	TargetCompID       string // the service's CompID; default fixsession.RecoveryCompID
	Username, Password string // the Logon's 553 and 554
	// TLS, if set, connects over TLS (fixsession.LoadClientTLS); nil: plain TCP.
	TLS *fixsession.ClientTLS

	// Deprecated: Templates is unused: retransmissions are handed to the engine as model
	// values, never encoded to FAST. It is accepted for the callers that still set it.
	Templates *fast.Templates

	// Timeout fails a request that has had no answer message for this long.
	Timeout time.Duration
	// MaxQueued bounds the requests waiting for a logon; beyond it a request fails at once.
	MaxQueued int

	HeartBtInt        time.Duration // the session's heartbeat interval; default fixsession's
	ReconnectInterval time.Duration // wait after a lost or refused session; default fixsession's

	// Persistence keeps the session's sequence numbers across restarts (a file store)
	// and logs its messages to files.
	Persistence fixsession.Persistence
	// MaxMessageSize bounds a message from the service (0: fixsession's default). Every
	// message from the service passes the initiator's framing guard: a malformed one is
	// counted (GuardStats) and closes the connection, and the client reconnects.
	MaxMessageSize int

	// Logger receives session events, refusals and timeouts; nil discards them.
	Logger *slog.Logger
}

// Client is a feed.Recovery over a FIX session. Create it with New, give it to the
// handler (which calls Start), and Close it when the handler is done.
type Client struct {
	cfg Config
	log *slog.Logger
	ini *fixsession.Initiator

	inbox  chan *request // Retransmit and Snapshot -> run
	events chan event    // the session -> run
	kick   chan struct{} // overflow has something

	ctx    context.Context
	cancel context.CancelFunc

	// Counters (Stats).
	snapshotsSent, joined, lateAnswers atomic.Uint64

	mu      sync.Mutex
	started bool
	spilled []*request              // requests that found the inbox full, bounded by MaxQueued
	lost    map[bool]map[string]int // requests beyond spilled: how many, by kind and channel
}

// request is one Retransmit or Snapshot; run owns it once it is in the inbox.
type request struct {
	id       string
	channel  string
	snapshot bool
	beg, end uint32   // Retransmit
	symbols  []string // Snapshot, without duplicates; empty: the whole channel
	want     map[string]bool

	ids       []string // every MDReqID it answers to (a joined request has several), id the last
	expired   bool     // Snapshot: timed out and failed; a late answer is still used
	oldAnswer bool     // Snapshot: answered under an earlier MDReqID than the last

	deadline time.Time
	retries  int                    // times sent again after a lost session
	next     uint32                 // Retransmit: the next sequence number expected
	snaps    map[string]md.Snapshot // Snapshot: received, by symbol
	order    []string               // Snapshot: symbols in the order received
	total    int                    // Snapshot: TotNumReports announced, 0 if unknown
}

// event is something the session reports to run.
type event struct {
	logon  bool
	logout bool
	reason string // logout

	// An answer message.
	kind  byte // md.Kind, or 'Y'
	reqID string
	appl  md.ApplFields
	inc   md.Incremental
	def   md.Definition
	stat  md.Status
	snap  md.Snapshot
	total int // W: TotNumReports
	rej   md.MarketDataReject
	err   error // the answer did not parse
}

// New returns a client for cfg. It connects when the handler calls Start.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("fixrecovery: Timeout %v is negative", cfg.Timeout)
	case cfg.MaxQueued < 0:
		return nil, fmt.Errorf("fixrecovery: MaxQueued %d is negative", cfg.MaxQueued)
	}
	if cfg.Connect == "" {
		cfg.Connect = fixsession.RecoveryListen
	}
	if cfg.SenderCompID == "" {
		cfg.SenderCompID = DefaultSenderCompID
	}
	if cfg.TargetCompID == "" {
		cfg.TargetCompID = fixsession.RecoveryCompID
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:    cfg,
		log:    cfg.Logger,
		inbox:  make(chan *request, cfg.MaxQueued),
		events: make(chan event, 1024),
		kick:   make(chan struct{}, 1),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var err error
	c.ini, err = fixsession.NewInitiator(fixsession.InitiatorConfig{
		Connect:           cfg.Connect,
		SenderCompID:      cfg.SenderCompID,
		TargetCompID:      cfg.TargetCompID,
		Username:          cfg.Username,
		Password:          cfg.Password,
		TLS:               cfg.TLS,
		HeartBtInt:        cfg.HeartBtInt,
		ReconnectInterval: cfg.ReconnectInterval,
		Persistence:       cfg.Persistence,
		MaxMessageSize:    cfg.MaxMessageSize,
		Logger:            cfg.Logger,
	}, fixsession.HandlerFuncs{Logon: c.onLogon, Logout: c.onLogout, Message: c.onMessage})
	if err != nil {
		return nil, fmt.Errorf("fixrecovery: %w", err)
	}
	return c, nil
}

// Start starts the session and the client's goroutine, which reports to sink. It is
// called once, by the handler; a session that cannot start (another Client with the same
// CompIDs in the process) fails every request.
func (c *Client) Start(sink feed.Sink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.ctx.Err() != nil {
		return
	}
	c.started = true
	var startErr error
	if err := c.ini.Start(c.ctx); err != nil {
		startErr = fmt.Errorf("fixrecovery: %w", err)
		c.log.Error("recovery session not started", "err", startErr)
	}
	go c.run(sink, startErr)
}

// Close logs out and stops the session; requests still pending get no outcome. It does
// not wait for a Sink call in progress.
func (c *Client) Close() {
	c.cancel()
	c.ini.Stop()
}

// GuardStats returns the counters of the session's framing guard: connections made,
// and malformed messages from the service, each of which closed its connection.
func (c *Client) GuardStats() fixsession.InitiatorStats { return c.ini.Stats() }

// Stats counts what the client did about snapshot requests.
type Stats struct {
	// SnapshotRequests counts the snapshot MarketDataRequests (V) sent.
	SnapshotRequests uint64 `json:"snapshot_requests"`
	// Joined counts the Snapshot calls that joined the channel's request still
	// unanswered instead of making one of their own.
	Joined uint64 `json:"joined"`
	// LateAnswers counts the snapshot answers that came after their request had timed
	// out (and failed), or under an MDReqID older than the last it was sent under, and
	// were delivered all the same.
	LateAnswers uint64 `json:"late_answers"`
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{SnapshotRequests: c.snapshotsSent.Load(), Joined: c.joined.Load(), LateAnswers: c.lateAnswers.Load()}
}

// LoggedOn reports whether the session is logged on now.
func (c *Client) LoggedOn() bool { return c.ini.LoggedOn() }

// Retransmit asks for the messages beg..end of channel.
func (c *Client) Retransmit(channel string, beg, end uint32) {
	c.submit(&request{channel: channel, beg: beg, end: end, next: beg})
}

// Snapshot asks for snapshots of symbols, all on channel, or of every instrument of
// channel when symbols is empty.
func (c *Client) Snapshot(channel string, symbols []string) {
	req := &request{channel: channel, snapshot: true, want: make(map[string]bool, len(symbols))}
	for _, s := range symbols {
		if !req.want[s] {
			req.want[s] = true
			req.symbols = append(req.symbols, s)
		}
	}
	c.submit(req)
}

// submit hands r to run without blocking. When the inbox is full, r waits in the
// spilled list for run to fail it; beyond MaxQueued there, only a count is kept.
func (c *Client) submit(r *request) {
	select {
	case c.inbox <- r:
		return
	default:
	}
	c.mu.Lock()
	if len(c.spilled) < c.cfg.MaxQueued {
		c.spilled = append(c.spilled, r)
	} else {
		if c.lost == nil {
			c.lost = map[bool]map[string]int{false: {}, true: {}}
		}
		c.lost[r.snapshot][r.channel]++
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// The session's callbacks, on its goroutine.

func (c *Client) post(ev event) {
	select {
	case c.events <- ev:
	case <-c.ctx.Done():
	}
}

func (c *Client) onLogon(quickfix.SessionID) { c.post(event{logon: true}) }

func (c *Client) onLogout(_ quickfix.SessionID, reason string) {
	c.post(event{logout: true, reason: reason})
}

// onMessage parses an answer; run matches it to its request.
func (c *Client) onMessage(_ quickfix.SessionID, msg *quickfix.Message) error {
	ev, ok := parseAnswer(msg)
	if !ok {
		t, _ := msg.Header.GetBytes(tag.MsgType)
		text, _ := msg.Body.GetString(tag.Text)
		c.log.Info("recovery session: ignored message", "msgtype", string(t), "text", text)
		return nil
	}
	c.post(ev)
	return nil
}

// parseAnswer reads an answer to a request: X, d, f, W or Y with an MDReqID. ok is
// false for any other message; an answer that does not parse is returned with err set.
func parseAnswer(msg *quickfix.Message) (ev event, ok bool) {
	t, _ := msg.Header.GetBytes(tag.MsgType)
	if len(t) != 1 {
		return event{}, false
	}
	ev.kind = t[0]
	ev.reqID, _ = msg.Body.GetString(tag.MDReqID)
	if ev.reqID == "" {
		return event{}, false
	}
	var err error
	switch t[0] {
	case md.MsgTypeMarketDataRequestReject[0]:
		ev.rej, err = md.MarketDataRejectFromFIX(msg)
	case byte(md.KindIncremental):
		ev.appl, err = md.IncrementalFromFIX(msg, &ev.inc)
	case byte(md.KindDefinition):
		ev.appl, err = md.DefinitionFromFIX(msg, &ev.def)
	case byte(md.KindStatus):
		ev.appl, err = md.StatusFromFIX(msg, &ev.stat)
	case byte(md.KindSnapshot):
		ev.appl, err = md.SnapshotFromFIX(msg, &ev.snap)
		if err == nil && msg.Body.Has(tag.TotNumReports) {
			// Not GetInt: quickfix v0.9.7's integer parse panics on an empty value.
			v, _ := msg.Body.GetBytes(tag.TotNumReports)
			ev.total, err = strconv.Atoi(string(v))
			if err == nil && ev.total <= 0 {
				err = fmt.Errorf("TotNumReports %d", ev.total)
			} else if err != nil {
				err = fmt.Errorf("TotNumReports (911) %q: not an integer", v)
			}
		}
	default:
		return event{}, false
	}
	ev.err = err
	return ev, true
}
