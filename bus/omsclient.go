package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/quickfixgo/quickfix"

	"fastfeed/internal/fixsession"
	"fastfeed/md"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Connect            string // the bus's address (default fixsession.OMSListen)
	SenderCompID       string // this client's CompID, required
	TargetCompID       string // the bus's CompID (default fixsession.OMSCompID)
	Username, Password string
	// TLS, if set, connects over TLS (fixsession.LoadClientTLS); nil: plain TCP.
	TLS *fixsession.ClientTLS
	// OnMessage, if set, is called after each market-data message is applied, on the
	// session's goroutine (a slow OnMessage makes a slow client).
	OnMessage func(kind md.Kind, mdReqID string, books *Books)
	// Persistence keeps the session's sequence numbers across restarts of the client
	// or the service (a file store) and logs its messages to files.
	Persistence fixsession.Persistence
	// HeartBtInt and ReconnectInterval: fixsession's defaults when zero.
	HeartBtInt, ReconnectInterval time.Duration
	// Resubscribe sends the subscriptions open (Subscribe, not yet Unsubscribe) again
	// after each logon but the first: a service that restarted has forgotten them.
	Resubscribe bool
	Logger      *slog.Logger
}

// Client is a reference OMS client of the bus (a quickfix initiator): it sends
// MarketDataRequests and rebuilds the books from what it receives, measuring
// publish-to-client latency from the PublishTime (20010) of each X.
type Client struct {
	cfg ClientConfig
	ini *fixsession.Initiator

	mu       sync.Mutex
	books    *Books
	rejects  []md.MarketDataReject
	logout   string
	latency  *hdrhistogram.Histogram // ns
	updates  uint64                  // X entries received
	errs     []error
	loggedOn chan struct{}
	once     sync.Once
	logons   int                 // sessions logged on so far
	subs     map[string][]string // open subscriptions by MDReqID, for Resubscribe
}

// NewClient returns a client; Start connects it.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Connect == "" {
		cfg.Connect = fixsession.OMSListen
	}
	if cfg.TargetCompID == "" {
		cfg.TargetCompID = fixsession.OMSCompID
	}
	c := &Client{cfg: cfg, books: NewBooks(), latency: hdrhistogram.New(1, int64(10*time.Second), 3), loggedOn: make(chan struct{}),
		subs: map[string][]string{}}
	ini, err := fixsession.NewInitiator(fixsession.InitiatorConfig{Connect: cfg.Connect, SenderCompID: cfg.SenderCompID,
		TargetCompID: cfg.TargetCompID, Username: cfg.Username, Password: cfg.Password, TLS: cfg.TLS, Logger: cfg.Logger,
		Persistence: cfg.Persistence, HeartBtInt: cfg.HeartBtInt, ReconnectInterval: cfg.ReconnectInterval}, fixsession.HandlerFuncs{
		Logon:   c.onLogon,
		Logout:  func(_ quickfix.SessionID, reason string) { c.mu.Lock(); c.logout = reason; c.mu.Unlock() },
		Message: c.onMessage,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: client: %w", err)
	}
	c.ini = ini
	return c, nil
}

// Start connects and waits until the session has logged on or ctx ends.
func (c *Client) Start(ctx context.Context) error {
	if err := c.ini.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.loggedOn:
			return nil
		case <-tick.C:
			// Nobody listening: after RefusedAttempts refused connections in a row,
			// say so rather than wait for ctx.
			if msg, n := c.ini.ConnectError(); n >= RefusedAttempts && strings.Contains(msg, "connection refused") {
				return fmt.Errorf("bus: client %s: connection refused by %s (%d attempts; is the handler's --serve-fix listening there?): %s",
					c.cfg.SenderCompID, c.cfg.Connect, n, msg)
			}
		case <-ctx.Done():
			c.mu.Lock()
			reason := c.logout
			c.mu.Unlock()
			if reason == "" {
				if msg, _ := c.ini.ConnectError(); msg != "" {
					reason = msg
				} else {
					reason = "no connection made, no Logon answered yet"
				}
			}
			return fmt.Errorf("bus: client %s: no logon to %s (%s): %w", c.cfg.SenderCompID, c.cfg.Connect, reason, ctx.Err())
		}
	}
}

// RefusedAttempts is how many refused connections in a row make Client.Start give up
// (one a second: about 3 s).
const RefusedAttempts = 3

// Close logs out and disconnects.
func (c *Client) Close() { c.ini.Stop() }

func (c *Client) onMessage(_ quickfix.SessionID, msg *quickfix.Message) error {
	now := time.Now().UnixNano()
	if msg.IsMsgTypeOf(md.MsgTypeMarketDataRequestReject) {
		rej, err := md.MarketDataRejectFromFIX(msg)
		c.mu.Lock()
		if err != nil {
			c.errs = append(c.errs, err)
		} else {
			c.rejects = append(c.rejects, rej)
		}
		c.mu.Unlock()
		return nil
	}
	c.mu.Lock()
	before := c.books.stats.Entries + c.books.stats.Duplicates
	kind, id, err := c.books.Apply(msg)
	if err != nil {
		c.errs = append(c.errs, err)
		c.mu.Unlock()
		return nil
	}
	if kind == md.KindIncremental {
		c.updates += c.books.stats.Entries + c.books.stats.Duplicates - before
		// Not GetInt: quickfix v0.9.7's integer parse panics on an empty value.
		v, _ := msg.Body.GetBytes(TagPublishTime)
		if at, err := strconv.ParseInt(string(v), 10, 64); err == nil && at > 0 {
			d := max(now-at, 0)
			_ = c.latency.RecordValue(min(d, c.latency.HighestTrackableValue()))
		}
	}
	c.mu.Unlock()
	if c.cfg.OnMessage != nil {
		c.cfg.OnMessage(kind, id, c.books)
	}
	return nil
}

// onLogon marks the client logged on and, with Resubscribe, sends the open
// subscriptions again after a logon but the first.
func (c *Client) onLogon(quickfix.SessionID) {
	c.once.Do(func() { close(c.loggedOn) })
	c.mu.Lock()
	c.logons++
	var again []md.MarketDataRequest
	if c.logons > 1 && c.cfg.Resubscribe {
		for id, patterns := range c.subs {
			again = append(again, md.MarketDataRequest{MDReqID: id, SubscriptionType: md.SubscriptionSubscribe, Symbols: patterns})
		}
	}
	c.mu.Unlock()
	if len(again) > 0 {
		go c.resubscribe(again)
	}
}

// resubscribe sends the subscriptions again once the session is in sync: after a
// restart on a file store, quickfix first exchanges a ResendRequest and a gap fill, which
// it sends right after the Logon; a W sent by the service before the gap fill arrives
// would be lost in it.
func (c *Client) resubscribe(reqs []md.MarketDataRequest) {
	time.Sleep(resubscribeSettle)
	for deadline := time.Now().Add(5 * time.Second); c.ini.Resending() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	for _, r := range reqs {
		if err := c.request(r); err != nil {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}
	}
}

// resubscribeSettle is the wait after a logon for the session's resend exchange, if any,
// to start (quickfix sends its ResendRequest on the session's goroutine right after the
// Logon is handled).
const resubscribeSettle = 100 * time.Millisecond

// Logons returns how many times the session has logged on.
func (c *Client) Logons() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logons
}

// Subscribe asks for snapshots and then updates of the instruments matching patterns
// (symbols, prefixes "SB*", channels or "*") under mdReqID.
func (c *Client) Subscribe(mdReqID string, patterns ...string) error {
	c.mu.Lock()
	c.subs[mdReqID] = append([]string(nil), patterns...)
	c.mu.Unlock()
	return c.request(md.MarketDataRequest{MDReqID: mdReqID, SubscriptionType: md.SubscriptionSubscribe, Symbols: patterns})
}

// Snapshot asks for snapshots only.
func (c *Client) Snapshot(mdReqID string, patterns ...string) error {
	return c.request(md.MarketDataRequest{MDReqID: mdReqID, SubscriptionType: md.SubscriptionSnapshot, Symbols: patterns})
}

// Unsubscribe ends the subscription mdReqID.
func (c *Client) Unsubscribe(mdReqID string) error {
	c.mu.Lock()
	delete(c.subs, mdReqID)
	c.mu.Unlock()
	return c.request(md.MarketDataRequest{MDReqID: mdReqID, SubscriptionType: md.SubscriptionUnsubscribe})
}

func (c *Client) request(r md.MarketDataRequest) error {
	if err := c.ini.Send(r.ToFIX()); err != nil {
		return fmt.Errorf("bus: client %s: %w", c.cfg.SenderCompID, err)
	}
	return nil
}

// ClientReport is what a client has received.
type ClientReport struct {
	Books    BooksStats
	Updates  uint64 // X entries received, duplicates included
	Rejects  []md.MarketDataReject
	Errors   []error
	LoggedOn bool
	Logout   string // Text of the last Logout received
}

// Report returns what the client has received so far.
func (c *Client) Report() ClientReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ClientReport{Books: c.books.stats, Updates: c.updates, Rejects: append([]md.MarketDataReject(nil), c.rejects...),
		Errors: append([]error(nil), c.errs...), LoggedOn: c.ini.LoggedOn(), Logout: c.logout}
}

// Books calls fn with the rebuilt books, under the client's lock.
func (c *Client) Books(fn func(*Books)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.books)
}

// Latency returns a copy of the publish-to-client latency histogram of X messages (ns).
func (c *Client) Latency() *hdrhistogram.Histogram {
	c.mu.Lock()
	defer c.mu.Unlock()
	return hdrhistogram.Import(c.latency.Export())
}

// takeLatency returns the latency histogram and empties it, at once (a window's).
func (c *Client) takeLatency() *hdrhistogram.Histogram {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := hdrhistogram.Import(c.latency.Export())
	c.latency.Reset()
	return h
}

// ResetLatency empties the latency histogram (to measure a window).
func (c *Client) ResetLatency() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latency.Reset()
}
