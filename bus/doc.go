// Package bus distributes a feed handler's books to order-management systems over FIX
// (FIXT.1.1 / FIX.5.0SP2): a quickfix acceptor (internal/fixsession) that authenticates
// clients by Username (553) and Password (554) against a configuration that also holds
// each user's entitlements, and serves MarketDataRequest (V) subscriptions.
//
// Requests. SubscriptionRequestType (263) 1 subscribes to the instruments named in
// NoRelatedSym (146) / Symbol (55), and to the channel in ApplID (1180) if given; each
// symbol is a feed.Pattern: one symbol (one-to-one), a prefix "SB*" or a channel
// "G239.1.2.3:30001" (one-to-group), or "*" (one-to-many). The client gets a
// MarketDataSnapshotFullRefresh (W) per instrument, then MarketDataIncrementalRefresh (X)
// messages as the books change, every message with the request's MDReqID (262); each X
// entry carries the instrument's RptSeq (83), so a client checks its own ordering, and a W
// carries the RptSeq it is valid at. 263=0 sends the Ws only; 263=2 ends the subscription
// its MDReqID names. A MarketDataRequestReject (Y) with MDReqRejReason (281) and Text (58)
// answers a request naming an unknown symbol or a pattern that matches nothing (0), one
// the user is not entitled to (3), a duplicate MDReqID (1), an unsupported
// SubscriptionRequestType such as a retransmission (4), a MarketDepth other than 0 (5),
// or an unsubscription of an unknown MDReqID (no reason, Text only). A pattern that
// matches some instruments the user is entitled to delivers exactly those; the others
// are filtered silently.
//
// Stale books. When the handler marks a book stale, its subscribers get a SecurityStatus
// (f) with the MDReqID, Symbol, SecurityTradingStatus (326) 20 (unknown or invalid) and
// Text "stale": the client should stop trusting the book. When the handler rebuilds the
// book, a fresh W follows. A real SecurityStatus from the feed is passed on as an f with
// its own trading status.
//
// Routing. The bus registers one feed.Subscription per request with the request's
// patterns (feed's matching: there is no second routing table); entitlements are checked
// with the same feed.Pattern.Match, once per instrument and request.
//
// Fan-out never slows the handler. The subscription callback, on the handler's
// goroutine, copies the event into the client's bounded single-producer ring (no lock,
// no allocation) and returns; a writer goroutine per client builds the FIX messages and
// hands them to quickfix. quickfix's own send queue is unbounded, so the bus counts the
// messages the session has actually taken for its connection (from the session's
// "fix out" log records) and stops handing more past Config.MaxInFlight. When the ring
// overflows, the client is conflated: every pending incremental is dropped, events are
// dropped until, on the handler's goroutine, fresh Ws of all its subscribed books are
// taken (Handler.Do) and queued ahead of later events; that is counted per client. A
// client conflated at least once that has not caught up for Config.SlowLimit is logged
// out with a Text giving the reason.
//
// Consistency. Snapshots are taken on the handler's goroutine, so a W and the Xs after it
// are exact. Each request also checks, per instrument, that the RptSeq of every event
// follows the last one it sent; if not (a publisher reset, a subscription registered
// after its first snapshot), it sends a W of the book as it is at that event instead of
// the X.
//
// Custom tag: every X and W carries PublishTime (20010), the handler's wall-clock time in
// nanoseconds when the (first) event was queued, for publish-to-client latency.
package bus
